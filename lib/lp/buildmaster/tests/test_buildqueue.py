# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the build queue, on every backend."""

__all__ = []

from datetime import timedelta

import transaction
from testtools.matchers import MatchesStructure
from zope.component import getUtility

from lp.app.errors import NotFoundError
from lp.buildmaster.enums import BuildQueueStatus, BuildStatus
from lp.buildmaster.interfaces.buildqueue import IBuildQueue, IBuildQueueSet
from lp.services.database.interfaces import IStore
from lp.testing import TestCaseWithFactory
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)


class TestBuildQueue(TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def test_queueBuild(self):
        build = self.factory.makeOCIRecipeBuild()
        bq = build.queueBuild()
        transaction.commit()
        IStore(bq).invalidate()
        self.assertTrue(IBuildQueue.providedBy(bq))
        self.assertThat(
            bq,
            MatchesStructure.byEquality(
                builder=None,
                status=BuildQueueStatus.WAITING,
                processor=build.processor,
                virtualized=True,
                lastscore=2510,
                manual=False,
                estimated_duration=timedelta(minutes=30),
                date_started=None,
                logtail=None,
            ),
        )
        self.assertEqual(bq, build.buildqueue_record)
        self.assertEqual(build, bq.specific_build)
        self.assertEqual(build.build_cookie, bq.build_cookie)
        self.assertEqual(bq, getUtility(IBuildQueueSet).get(bq.id))

    def test_get_unknown(self):
        self.assertRaises(NotFoundError, getUtility(IBuildQueueSet).get, 1)

    def test_markAsBuilding(self):
        builder = self.factory.makeBuilder()
        bq = self.factory.makeBuildQueue()
        bq.markAsBuilding(builder)
        build = bq.specific_build
        self.assertThat(
            bq,
            MatchesStructure.byEquality(
                builder=builder, status=BuildQueueStatus.RUNNING
            ),
        )
        self.assertIsNotNone(bq.date_started)
        self.assertEqual(BuildStatus.BUILDING, build.status)
        self.assertEqual(builder, build.builder)
        self.assertEqual(builder, build.build_farm_job.builder)
        self.assertEqual(bq, getUtility(IBuildQueueSet).getByBuilder(builder))
        self.assertEqual(bq, builder.currentjob)

    def test_reset(self):
        builder = self.factory.makeBuilder()
        bq = self.factory.makeBuildQueue(builder=builder)
        bq.logtail = "building"
        bq.reset()
        build = bq.specific_build
        self.assertThat(
            bq,
            MatchesStructure.byEquality(
                builder=None,
                status=BuildQueueStatus.WAITING,
                date_started=None,
                logtail=None,
            ),
        )
        self.assertEqual(BuildStatus.NEEDSBUILD, build.status)
        self.assertIsNone(build.builder)
        self.assertIsNone(build.build_farm_job.builder)
        self.assertIsNone(builder.currentjob)

    def test_destroySelf(self):
        builder = self.factory.makeBuilder()
        bq = self.factory.makeBuildQueue(builder=builder)
        build = bq.specific_build
        bq.destroySelf()
        self.assertIsNone(build.buildqueue_record)
        self.assertIsNone(getUtility(IBuildQueueSet).getByBuilder(builder))
        # The build keeps its builder and status.
        self.assertEqual(builder, build.builder)
        self.assertEqual(BuildStatus.BUILDING, build.status)


class TestBuildQueueSQLite(TestBuildQueue):
    layer = SQLiteLaunchpadZopelessLayer
