# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The PostgreSQL connection dropped during upload processing.

``lp-oci run`` on a database of the private cluster stops itself
(SIGSTOP, `ocitypes.faultpoint`) inside upload processing, just before
the build would be FULLYBUILT; the test terminates its backends with
``pg_terminate_backend`` and lets it go on.  The commit fails: the
command ends with one line naming the database, the build is failed
with the reason (not FULLYBUILT), and a rerun succeeds.
"""

__all__ = []

import os
import signal
import subprocess
import sys
import time

from fixtures import TempDir

from lp.testing import TestCase
from lp.testing.layers import DatabaseLayer
from lpoci.tests.test_lifecycle import _stopped
from tests.faults.invariants import (
    append_report,
    state_problems,
    verify_problems,
)
from tests.faults.test_kill_points import child_env

FULLYBUILT, FAILEDTOUPLOAD = 1, 7


class TestDatabaseDrop(TestCase):
    layer = DatabaseLayer

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(TempDir()).path
        self.state = os.path.join(self.tmp, "var")
        self.dbname = f"faults_drop_{os.getpid()}"
        DatabaseLayer.cluster.createdb(self.dbname)
        self.uri = DatabaseLayer.cluster.uri(self.dbname)

    def connect(self):
        return DatabaseLayer.cluster.connect(self.dbname)

    def lp_oci(self, **env):
        return subprocess.Popen(
            [sys.executable, "-m", "lpoci.cli", "run", "--sample"]
            + ["--state", self.state],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(LP_DATABASE_URI=self.uri, **env),
        )

    def terminate_backends(self):
        db = self.connect()
        try:
            with db.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.dbname,),
                )
                return len(cursor.fetchall())
        finally:
            db.close()

    def builds(self):
        db = self.connect()
        try:
            with db.cursor() as cursor:
                cursor.execute(
                    "SELECT id, status, failure_reason FROM OCIRecipeBuild "
                    "ORDER BY id"
                )
                return cursor.fetchall()
        finally:
            db.close()

    def test_connection_dropped_during_upload_processing(self):
        proc = self.lp_oci(LP_OCI_FAULTPOINT="upload.processed:1:STOP")
        self.addCleanup(proc.kill)
        deadline = time.time() + 120
        while not _stopped(proc.pid):
            if proc.poll() is not None:
                self.fail(f"ended before the checkpoint: {proc.stderr.read()}")
            self.assertLess(time.time(), deadline)
            time.sleep(0.05)
        self.assertGreaterEqual(self.terminate_backends(), 1)
        os.kill(proc.pid, signal.SIGCONT)
        _, stderr = proc.communicate(timeout=120)
        self.assertEqual(1, proc.returncode, stderr)
        self.assertNotIn("Traceback", stderr)
        line = stderr.splitlines()[-1]
        self.assertTrue(line.startswith("lp-oci: error: database "), line)
        self.assertIn(self.dbname, line)
        self.assertNotIn("password", line)
        ((_, status, reason),) = self.builds()
        self.assertEqual(FAILEDTOUPLOAD, status, reason)
        self.assertIn("while UPLOADING", reason)
        rerun = self.lp_oci()
        _, stderr = rerun.communicate(timeout=120)
        self.assertEqual(0, rerun.returncode, stderr)
        self.assertEqual(
            [FAILEDTOUPLOAD, FULLYBUILT], [b[1] for b in self.builds()]
        )
        self.assertEqual([], state_problems(self.state, connect=self.connect))
        self.assertEqual(
            [],
            verify_problems(self.state, child_env(LP_DATABASE_URI=self.uri)),
        )
        append_report({"suite": "database-drop", "faults": 1})
