# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `lpoci.progress`."""

__all__ = []

import io
import logging
import threading

from lp.testing import TestCase
from lpoci.progress import INTERVAL, ProgressLogHandler, RunProgress


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
        phase = progress.phase("upload")
        phase.add(10)
        phase.finish()
        self.assertEqual("", stream.getvalue())
        self.assertEqual(10, progress.asdict()["upload"]["bytes"])
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
