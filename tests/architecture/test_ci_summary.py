# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""CI's one summary line adds the upstream-check's counts to the tests'.

``.ci/summarise_testrunner.py`` is not a package's module: it is loaded
from its path.
"""

__all__ = []

import importlib.util
import os

from testtools import TestCase

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
spec = importlib.util.spec_from_file_location(
    "summarise_testrunner",
    os.path.join(ROOT, ".ci", "summarise_testrunner.py"),
)
summariser = importlib.util.module_from_spec(spec)
spec.loader.exec_module(summariser)

RUNNER = [
    "  Ran 10 tests with 0 failures, 0 errors and 1 skipped in 1 s.\n",
]


class TestUpstreamCounts(TestCase):
    def summarise(self, upstream_lines, upstream_status):
        upstream = summariser.summarise_upstream(
            upstream_lines, upstream_status
        )
        return summariser.summarise(RUNNER, 0, upstream)

    def test_counts_added(self):
        lines = ["ok x\n", "upstream-check: 21 passed, 0 failed\n"]
        self.assertEqual(
            ("30 passed, 0 failed, 1 skipped", 0), self.summarise(lines, 0)
        )

    def test_failures_added(self):
        lines = [
            "upstream-check: 20 passed, 2 failed\n",
            "make: *** [Makefile:56: upstream-check] Error 1\n",
        ]
        self.assertEqual(
            ("29 passed, 2 failed, 1 skipped", 1), self.summarise(lines, 2)
        )

    def test_skipped_adds_nothing(self):
        lines = ["upstream-check: skipped: ../shared/upstream not found\n"]
        self.assertEqual(
            ("9 passed, 0 failed, 1 skipped", 0), self.summarise(lines, 0)
        )

    def test_no_counts_line_fails(self):
        lines = ["upstream-check: interrupted\n"]
        self.assertEqual(
            ("9 passed, 1 failed, 1 skipped", 1), self.summarise(lines, 0)
        )

    def test_non_zero_status_fails(self):
        lines = ["upstream-check: 21 passed, 0 failed\n"]
        self.assertEqual(
            ("30 passed, 1 failed, 1 skipped", 1), self.summarise(lines, 2)
        )

    def test_without_upstream(self):
        self.assertEqual(
            ("9 passed, 0 failed, 1 skipped", 0),
            summariser.summarise(RUNNER, 0),
        )
