# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `ocitypes.testing.tool_missing`, and that tests use it."""

__all__ = []

import os
import re
import unittest

from fixtures import EnvironmentVariable
from testtools import TestCase

from ocitypes.testing import REQUIRE_TOOLS, tool_missing

LIB = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
ROOT = os.path.dirname(LIB)
# A skip that names one of the tools LP_OCI_REQUIRE_TOOLS covers.
TOOL_SKIP = re.compile(
    r"skipTest\([^)]*(skopeo|registry|chromium|tmpfs)", re.IGNORECASE
)


class Needy(TestCase):
    def needs_a_tool(self):
        tool_missing(self, "frobnicator is not installed")


class TestToolMissing(TestCase):
    def run_needy(self):
        result = unittest.TestResult()
        Needy("needs_a_tool").run(result)
        return result

    def test_skips_by_default(self):
        self.useFixture(EnvironmentVariable(REQUIRE_TOOLS))
        result = self.run_needy()
        self.assertEqual(
            ([], ["frobnicator is not installed"]),
            (result.failures, [reason for _, reason in result.skipped]),
        )

    def test_fails_where_tools_are_required(self):
        self.useFixture(EnvironmentVariable(REQUIRE_TOOLS, "1"))
        result = self.run_needy()
        self.assertEqual([], result.skipped)
        [(_, traceback)] = result.failures
        self.assertIn(
            "frobnicator is not installed and LP_OCI_REQUIRE_TOOLS=1",
            traceback,
        )

    def test_every_skip_for_a_tool_uses_it(self):
        offences = []
        for top in (LIB, os.path.join(ROOT, "tests")):
            for dirpath, dirnames, filenames in os.walk(top):
                dirnames[:] = [d for d in dirnames if d != "__pycache__"]
                for name in filenames:
                    if not name.endswith(".py"):
                        continue
                    path = os.path.join(dirpath, name)
                    with open(path, encoding="utf-8") as f:
                        source = f.read()
                    if TOOL_SKIP.search(source):
                        offences.append(os.path.relpath(path, ROOT))
        self.assertEqual([], offences)

    def test_ci_requires_tools(self):
        with open(os.path.join(ROOT, ".ci", "run")) as f:
            lines = [line.strip() for line in f]
        self.assertIn(f"export {REQUIRE_TOOLS}=1", lines)
