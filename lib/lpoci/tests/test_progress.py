# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `lpoci.progress`, and fetch progress in `lpoci.run`."""

__all__ = []

import io
import logging
import os
import threading

from fixtures import TempDir
from twisted.internet import defer, task

from lp.buildmaster.interactor import DownloadResult
from lp.testing import TestCase
from lpoci.progress import INTERVAL, ProgressLogHandler, RunProgress
from lpoci.run import FETCH_PROGRESS_INTERVAL, _FetchCounter, bytes_in_flight


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class TTYStream(io.StringIO):
    def isatty(self):
        return True


class TestRunProgress(TestCase):
    def test_mode_follows_the_stream(self):
        self.assertEqual("tty", RunProgress(TTYStream()).mode)
        self.assertEqual("lines", RunProgress(io.StringIO()).mode)
        self.assertRaises(ValueError, RunProgress, io.StringIO(), "loud")

    def test_lines_one_per_phase_end(self):
        clock = FakeClock()
        stream = io.StringIO()
        progress = RunProgress(stream, clock=clock)
        phase = progress.phase("gather", total=4_000_000)
        phase.update(1_000_000)
        clock.now += 1
        phase.update(2_000_000)
        self.assertEqual("", stream.getvalue())
        clock.now += 1
        phase.finish(4_000_000, "1.0 MB out")
        self.assertEqual(
            "gather: 4.0 MB, 2 MB/s, 2.0 s (1.0 MB out)\n", stream.getvalue()
        )
        self.assertEqual(
            {"gather": {"seconds": 2.0, "bytes": 4_000_000}},
            progress.asdict(),
        )

    def test_tty_redraws_in_place_at_most_every_interval(self):
        clock = FakeClock()
        stream = TTYStream()
        progress = RunProgress(stream, clock=clock)
        phase = progress.phase("fetch")
        self.assertEqual(
            "\rfetch: 0.0 MB, 0 MB/s, 0.0 s\x1b[K", stream.getvalue()
        )
        stream.truncate(0)
        stream.seek(0)
        clock.now += INTERVAL / 2
        phase.add(500_000)
        self.assertEqual("", stream.getvalue())
        clock.now += INTERVAL
        phase.add(500_000)
        self.assertEqual(
            "\rfetch: 1.0 MB, 3 MB/s, 0.3 s\x1b[K", stream.getvalue()
        )
        stream.truncate(0)
        stream.seek(0)
        phase.finish()
        self.assertEqual(
            "\rfetch: 1.0 MB, 3 MB/s, 0.3 s\x1b[K\n", stream.getvalue()
        )
        # Updates after the end draw nothing.
        phase.add(1)
        clock.now += 1
        phase.update(5)
        self.assertEqual(
            "\rfetch: 1.0 MB, 3 MB/s, 0.3 s\x1b[K\n", stream.getvalue()
        )

    def test_total_shown_while_running(self):
        clock = FakeClock()
        stream = TTYStream()
        progress = RunProgress(stream, clock=clock)
        phase = progress.phase("gather", total=2_000_000)
        clock.now += 1
        phase.update(1_000_000)
        self.assertTrue(
            stream.getvalue().endswith(
                "\rgather: 1.0 MB of 2.0 MB, 1 MB/s, 1.0 s\x1b[K"
            )
        )

    def test_off_shows_no_progress(self):
        # --quiet: no progress; phases are still measured, and log lines
        # (--verbose asked for them) are still written.
        stream = TTYStream()
        progress = RunProgress(stream, mode="off")
        phase = progress.phase("processing")
        phase.add(10)
        phase.finish()
        self.assertEqual("", stream.getvalue())
        self.assertEqual(10, progress.asdict()["processing"]["bytes"])
        progress.log("asked for")
        self.assertEqual("asked for\n", stream.getvalue())

    def test_add_from_threads(self):
        progress = RunProgress(io.StringIO())
        phase = progress.phase("fetch")

        def add():
            for _ in range(1000):
                phase.add(1)

        threads = [threading.Thread(target=add) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(4000, phase.bytes)

    def test_closed_stream_is_ignored(self):
        stream = io.StringIO()
        progress = RunProgress(stream)
        stream.close()
        progress.phase("gather").finish()


class TestProgressLogHandler(TestCase):
    def makeLogger(self, progress):
        logger = logging.Logger("test-progress")
        logger.addHandler(ProgressLogHandler(progress))
        return logger

    def test_log_line_clears_a_running_line(self):
        clock = FakeClock()
        stream = TTYStream()
        progress = RunProgress(stream, clock=clock)
        progress.phase("fetch")
        self.makeLogger(progress).warning("Attempt 1 failed\nretrying")
        self.assertEqual(
            "\rfetch: 0.0 MB, 0 MB/s, 0.0 s\x1b[K"
            "\r\x1b[Klp-oci: WARNING: Attempt 1 failed retrying\n",
            stream.getvalue(),
        )

    def test_levels(self):
        stream = io.StringIO()
        logger = self.makeLogger(RunProgress(stream))
        logger.debug("hidden")
        logger.info("shown")
        self.assertEqual("lp-oci: INFO: shown\n", stream.getvalue())


class FakeBehaviour:
    """What `_FetchCounter` uses of an `OCIRecipeBuildBehaviour`."""

    def __init__(self, upload_root, bytes_fetched=0):
        self.upload_root = upload_root
        self.bytes_fetched = bytes_fetched


class TestFetchProgress(TestCase):
    """`lp-oci run` counts bytes of downloads still in progress."""

    def setUp(self):
        super().setUp()
        self.root = self.useFixture(TempDir()).path
        self.leaf = os.path.join(self.root, "leaf", "1", "ubuntu")
        os.makedirs(self.leaf)

    def write(self, name, size):
        with open(os.path.join(self.leaf, name), "wb") as f:
            f.write(b"x" * size)

    def test_bytes_in_flight_counts_part_files_only(self):
        self.write(".blobs-sha256-aa.k2j3.part", 300)
        self.write(".blobs-sha256-bb.x9y8.part", 20)
        self.write("blobs-sha256-cc", 5000)  # complete
        self.write("notes.part", 7)  # not hidden: not a download's
        self.assertEqual(320, bytes_in_flight(self.root))
        self.assertEqual(0, bytes_in_flight(os.path.join(self.root, "no")))

    def test_counter_moves_while_a_file_downloads(self):
        clock = task.Clock()
        stream = TTYStream()
        progress = RunProgress(stream, clock=clock.seconds)
        phase = progress.phase("fetch")
        pending = []

        class Worker:
            # What `_FetchCounter` uses of a `BuilderWorker`: getFile
            # returns a Deferred firing with a `DownloadResult`.
            def getFile(self, sha1, path, logger=None):
                pending.append(defer.Deferred())
                return pending[-1]

        worker = Worker()
        counter = _FetchCounter(
            worker, lambda: phase, FakeBehaviour(self.root), clock
        )
        fetched = worker.getFile("a" * 40, "unused")
        # The download process has written 2 MB of the file so far.
        self.write(".blobs-sha256-aa.k2j3.part", 2_000_000)
        clock.advance(FETCH_PROGRESS_INTERVAL)
        self.assertEqual(2_000_000, phase.bytes)
        self.write(".blobs-sha256-aa.k2j3.part", 3_000_000)
        clock.advance(FETCH_PROGRESS_INTERVAL)
        self.assertEqual(3_000_000, phase.bytes)
        # Complete: renamed into place, counted once.
        os.rename(
            os.path.join(self.leaf, ".blobs-sha256-aa.k2j3.part"),
            os.path.join(self.leaf, "blobs-sha256-aa"),
        )
        pending[0].callback(
            DownloadResult("unused", "a" * 40, "b" * 64, 3_500_000)
        )
        results = []
        fetched.addCallback(results.append)
        self.assertEqual([3_500_000], [r.size for r in results])
        self.assertEqual(3_500_000, phase.bytes)
        # Nothing in progress: the looping call has stopped.
        self.assertEqual([], clock.getDelayedCalls())
        counter.stop()

    def test_total_once_the_layers_to_fetch_are_known(self):
        # "fetch: 2.0 MB of 5.0 MB" once the behaviour has read the
        # manifests and knows which layers it fetches.
        clock = task.Clock()
        stream = TTYStream()
        progress = RunProgress(stream, clock=clock.seconds)
        phase = progress.phase("fetch")

        class Worker:
            def getFile(self, sha1, path, logger=None):
                return defer.Deferred()

        worker = Worker()
        behaviour = FakeBehaviour(self.root)
        counter = _FetchCounter(worker, lambda: phase, behaviour, clock)
        self.addCleanup(counter.stop)
        worker.getFile("a" * 40, "unused")
        self.write(".index.json.aa.part", 1000)
        clock.advance(FETCH_PROGRESS_INTERVAL)
        self.assertIsNone(phase.total)
        self.assertNotIn(" of ", phase.line())
        behaviour.bytes_fetched = 5_000_000
        self.write(".blobs-sha256-aa.k2j3.part", 2_000_000)
        clock.advance(FETCH_PROGRESS_INTERVAL)
        self.assertEqual(5_000_000, phase.total)
        self.assertTrue(
            phase.line().startswith("fetch: 2.0 MB of 5.0 MB, "),
            phase.line(),
        )
        self.assertIn("fetch: 2.0 MB of 5.0 MB, ", stream.getvalue())
