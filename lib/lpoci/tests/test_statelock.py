# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the state directory's writer lock."""

__all__ = []

import os
import threading

from fixtures import TempDir
from testtools import TestCase

from lpoci.statelock import StateLock, state_lock_holder


class TestStateLock(TestCase):
    def setUp(self):
        super().setUp()
        self.state = os.path.join(self.useFixture(TempDir()).path, "state")

    def test_holder(self):
        self.assertIsNone(state_lock_holder(self.state))
        with StateLock(self.state, "run"):
            self.assertEqual(os.getpid(), state_lock_holder(self.state))
        self.assertIsNone(state_lock_holder(self.state))

    def test_second_writer_waits_and_says_so(self):
        messages = []
        acquired = threading.Event()
        first = StateLock(self.state, "run").acquire()
        second = StateLock(self.state, "run-jobs", wait=messages.append)

        def take():
            second.acquire()
            acquired.set()

        thread = threading.Thread(target=take)
        thread.start()
        self.addCleanup(thread.join)
        self.addCleanup(second.release)
        self.assertFalse(acquired.wait(0.5))
        self.assertEqual(
            [
                f"state {self.state} is in use by pid {os.getpid()} (run), "
                "waiting"
            ],
            messages,
        )
        first.release()
        self.assertTrue(acquired.wait(30))
        self.assertEqual(os.getpid(), state_lock_holder(self.state))
