# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Signals late in a command never end it silently.

A SIGTERM once ``lp-oci run``'s build is committed FULLYBUILT still
says which build is done; a signal while the interpreter shuts down,
after ``run-jobs`` has written its summary, neither kills the process
by the signal nor prints a traceback: the command's status stands.
"""

__all__ = []

import os
import shutil
import signal
import subprocess
import sys

from fixtures import TempDir
from testtools import TestCase

from lpbuildd.ociimage.tests.helpers import CHILD_ENV
from lpoci.tests.test_state_database import lp_oci
from lpoci.tests.test_verify import VerifyStateLayer

# lp-oci as its console script runs it, SIGTERMed by an exit handler
# registered first (so run last, once the command's own have run).
SIGNALLED_AT_EXIT = """
import atexit, os, signal, sys
atexit.register(lambda: os.kill(os.getpid(), signal.SIGTERM))
from lpoci.cli import main
sys.argv[0] = "lp-oci"
sys.exit(main())
"""


class TestLateSignals(TestCase):
    layer = VerifyStateLayer

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(TempDir()).path
        self.state = os.path.join(self.tmp, "state")

    def test_sigterm_after_the_build_is_committed(self):
        status, stdout, stderr = lp_oci(
            "run",
            "--sample",
            "-q",
            "--state",
            self.state,
            LP_OCI_FAULTPOINT="run.processed:1:TERM",
        )
        self.assertEqual(128 + signal.SIGTERM, status, stderr)
        self.assertEqual("lp-oci: error: interrupted (SIGTERM)\n", stderr)
        self.assertEqual(
            "build 1: FULLYBUILT (interrupted before the report; "
            "lp-oci show 1)\n",
            stdout,
        )
        status, stdout, _ = lp_oci("list", "--state", self.state)
        self.assertIn("FULLYBUILT", stdout)

    def test_signal_at_the_very_end_of_run_jobs(self):
        shutil.copytree(self.layer.state, self.state)
        env = dict(CHILD_ENV)
        env.pop("LP_DATABASE_URI", None)
        env.pop("LP_LIBRARIAN_ROOT", None)
        proc = subprocess.run(
            [sys.executable, "-c", SIGNALLED_AT_EXIT]
            + ["run-jobs", "--state", self.state],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        self.assertEqual(0, proc.returncode, proc.stderr)
        self.assertEqual("", proc.stderr)
        self.assertIn("no registry upload jobs ready\n", proc.stdout)
