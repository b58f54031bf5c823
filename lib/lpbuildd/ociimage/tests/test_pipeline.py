# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `Stage`: order, errors raised in the feeding thread."""

__all__ = []

import threading

from testtools import TestCase

from lpbuildd.ociimage.pipeline import DEPTH, Stage


class TestStage(TestCase):
    def test_applies_in_order_in_another_thread(self):
        seen, threads = [], set()

        def function(data):
            seen.append(data)
            threads.add(threading.get_ident())

        stage = Stage(function)
        for i in range(20):
            stage.put(b"%d" % i)
        stage.close()
        self.assertEqual([b"%d" % i for i in range(20)], seen)
        self.assertNotIn(threading.get_ident(), threads)

    def test_error_raised_by_close(self):
        def function(data):
            raise ValueError("corrupt")

        stage = Stage(function)
        stage.put(b"x")
        self.assertRaises(ValueError, stage.close)
        # Again: the error stays.
        self.assertRaises(ValueError, stage.close)

    def test_error_raised_by_a_later_put_and_never_blocks(self):
        # After the error the thread drains its queue, so a feeder that
        # carries on (more than DEPTH chunks) is told, not blocked.
        failed = threading.Event()

        def function(data):
            failed.set()
            raise ValueError("corrupt")

        stage = Stage(function)
        stage.put(b"x")
        failed.wait()
        error = None
        for _ in range(DEPTH * 4):
            try:
                stage.put(b"y")
            except ValueError as e:
                error = e
                break
        self.assertIsInstance(error, ValueError)
        self.assertRaises(ValueError, stage.close)
