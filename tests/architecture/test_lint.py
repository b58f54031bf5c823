# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""flake8 finds nothing, with the project's configuration (setup.cfg).

``make lint`` runs it too; this makes CI, which runs the tests, catch
an unused import or name and an overlong line as well.
"""

__all__ = []

import importlib.util
import os
import subprocess
import sys

from fixtures import TempDir
from testtools import TestCase

from ocitypes.testing import tool_missing

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
# As the Makefile's FORMAT_PATHS.
PATHS = ("lib", "tests", "bench", "fuzz")


class TestFlake8(TestCase):
    def flake8(self, *args):
        if importlib.util.find_spec("flake8") is None:
            tool_missing(self, "flake8 is not installed (make install)")
        return subprocess.run(
            [sys.executable, "-m", "flake8", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )

    def test_tree_is_clean(self):
        result = self.flake8(*PATHS)
        self.assertEqual(
            ("", "", 0), (result.stdout, result.stderr, result.returncode)
        )

    def test_configuration_is_read(self):
        # An unused import and an overlong line are found; black's
        # slices and Storm's comparisons are not.
        path = os.path.join(self.useFixture(TempDir()).path, "sample.py")
        with open(path, "w") as f:
            f.write(
                "import os\n"
                "x = [1, 2]\n"
                "y = x[1 :] == None\n"
                f"z = {'1' * 80}\n"
            )
        result = self.flake8(path)
        self.assertEqual(
            [
                f"{path}:1:1: F401 'os' imported but unused",
                f"{path}:4:80: E501 line too long (84 > 79 characters)",
            ],
            result.stdout.splitlines(),
        )
