# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the generic `Job` record."""

__all__ = []

import transaction

from lp.services.database.interfaces import IStore
from lp.services.job.interfaces.job import InvalidTransition, JobStatus
from lp.services.job.model.job import Job
from lp.testing import TestCase
from lp.testing.layers import DatabaseLayer, SQLiteDatabaseLayer


class TestJob(TestCase):
    layer = DatabaseLayer

    def makeJob(self, **kwargs):
        job = Job(**kwargs)
        IStore(Job).add(job)
        return job

    def test_lifecycle(self):
        job = self.makeJob(max_retries=2)
        self.assertEqual(JobStatus.WAITING, job.status)
        self.assertTrue(job.is_pending)
        job.start()
        self.assertEqual(1, job.attempt_count)
        self.assertIsNotNone(job.date_started)
        job.queue()
        job.start()
        self.assertEqual(2, job.attempt_count)
        job.complete()
        transaction.commit()
        IStore(Job).invalidate()
        self.assertEqual(JobStatus.COMPLETED, job.status)
        self.assertFalse(job.is_pending)
        self.assertIsNotNone(job.date_finished)

    def test_invalid_transitions(self):
        job = self.makeJob()
        self.assertRaises(InvalidTransition, job.complete)
        self.assertRaises(InvalidTransition, job.resume)
        job.suspend()
        self.assertRaises(InvalidTransition, job.start)
        job.resume()
        self.assertEqual(JobStatus.WAITING, job.status)


class TestJobSQLite(TestJob):
    layer = SQLiteDatabaseLayer
