# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for ``lp-oci verify``, run as a real process on a real state.

A state is made once by ``lp-oci run --sample``; each test damages its
own copy.
"""

__all__ = []

import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

from fixtures import TempDir
from testtools import TestCase

from lpbuildd.ociimage.tests.helpers import CHILD_ENV

REPORT_KEYS = {
    "state",
    "librarian",
    "repair",
    "files_checked",
    "bytes_checked",
    "corrupt",
    "dangling",
    "orphans",
    "temporary_files",
    "work_dirs",
    "stuck_builds",
    "found",
    "problems",
    "clean",
}


def lp_oci(*args):
    env = dict(CHILD_ENV)
    env.pop("LP_DATABASE_URI", None)
    env.pop("LP_LIBRARIAN_ROOT", None)
    proc = subprocess.run(
        [sys.executable, "-m", "lpoci.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return proc.returncode, proc.stdout, proc.stderr


class VerifyStateLayer:
    """A pristine state made by ``lp-oci run --sample``."""

    @classmethod
    def setUp(cls):
        cls.parent = tempfile.mkdtemp(prefix="lp-oci-verify-test-")
        cls.state = os.path.join(cls.parent, "state")
        status, _, stderr = lp_oci("run", "--sample", "--state", cls.state)
        if status != 0:
            raise RuntimeError(stderr)

    @classmethod
    def tearDown(cls):
        shutil.rmtree(cls.parent, ignore_errors=True)

    @classmethod
    def testSetUp(cls):
        pass

    @classmethod
    def testTearDown(cls):
        pass


class TestVerifyCommand(TestCase):
    layer = VerifyStateLayer

    def setUp(self):
        super().setUp()
        self.state = os.path.join(self.useFixture(TempDir()).path, "state")
        shutil.copytree(self.layer.state, self.state)
        self.librarian = os.path.join(self.state, "librarian")

    def verify(self, *args):
        status, stdout, stderr = lp_oci(
            "verify", "--state", self.state, "--json", *args
        )
        self.assertNotIn("Traceback", stderr)
        return status, json.loads(stdout)

    def contents(self):
        """``{sha256: size}`` of the content rows, largest first."""
        with sqlite3.connect(os.path.join(self.state, "launchpad.db")) as db:
            rows = db.execute(
                "SELECT sha256, filesize FROM LibraryFileContent "
                "ORDER BY filesize DESC"
            ).fetchall()
        return dict(rows)

    def path(self, sha256):
        return os.path.join(self.librarian, sha256[:2], sha256)

    def sql(self, statement):
        with sqlite3.connect(os.path.join(self.state, "launchpad.db")) as db:
            db.execute(statement)

    def test_clean(self):
        status, report = self.verify()
        self.assertEqual(0, status)
        self.assertEqual(REPORT_KEYS, set(report))
        self.assertTrue(report["clean"])
        self.assertEqual(0, report["found"])
        self.assertEqual(len(self.contents()), report["files_checked"])
        self.assertEqual(
            sum(self.contents().values()), report["bytes_checked"]
        )
        self.assertFalse(report["repair"])

    def test_text_output(self):
        status, stdout, _ = lp_oci("verify", "--state", self.state)
        self.assertEqual(0, status)
        self.assertTrue(stdout.endswith(": clean\n"), stdout)

    def test_finds_and_repairs(self):
        contents = list(self.contents())
        flipped, missing = contents[0], contents[1]
        with open(self.path(flipped), "r+b") as f:
            f.seek(5)
            byte = f.read(1)
            f.seek(5)
            f.write(bytes([byte[0] ^ 0x80]))
        os.unlink(self.path(missing))
        orphan = hashlib.sha256(b"orphan").hexdigest()
        os.makedirs(os.path.dirname(self.path(orphan)), exist_ok=True)
        with open(self.path(orphan), "wb") as f:
            f.write(b"orphan")
        temp = os.path.join(self.librarian, "incoming", ".tmp-leftover")
        with open(temp, "wb") as f:
            f.write(b"partial")
        self.sql("UPDATE OCIRecipeBuild SET status = 8")  # UPLOADING
        status, report = self.verify()
        self.assertEqual(1, status)
        self.assertEqual(
            [flipped], [entry["sha256"] for entry in report["corrupt"]]
        )
        self.assertIn("has sha256", report["corrupt"][0]["reason"])
        self.assertEqual(
            [missing], [entry["sha256"] for entry in report["dangling"]]
        )
        self.assertEqual(
            [(orphan, 6)],
            [(entry["sha256"], entry["size"]) for entry in report["orphans"]],
        )
        self.assertEqual(
            [temp], [entry["path"] for entry in report["temporary_files"]]
        )
        self.assertEqual(
            [{"build_id": 1, "status": "UPLOADING", "repair": None}],
            report["stuck_builds"],
        )
        self.assertEqual(5, report["found"])
        self.assertEqual(5, report["problems"])

        status, report = self.verify("--repair")
        self.assertEqual(1, status)  # The missing content is lost.
        self.assertEqual(1, report["problems"])
        self.assertTrue(
            report["corrupt"][0]["repair"].startswith("quarantined as ")
        )
        self.assertEqual(
            [flipped[:64]],
            [name[:64] for name in os.listdir(self.librarian + "/quarantine")],
        )
        self.assertFalse(os.path.exists(self.path(orphan)))
        self.assertFalse(os.path.exists(temp))
        self.assertEqual(
            "marked FAILEDTOUPLOAD", report["stuck_builds"][0]["repair"]
        )
        with sqlite3.connect(os.path.join(self.state, "launchpad.db")) as db:
            ((status_value, reason),) = db.execute(
                "SELECT status, failure_reason FROM OCIRecipeBuild"
            ).fetchall()
        self.assertEqual(7, status_value)  # FAILEDTOUPLOAD
        self.assertIn("stranded in UPLOADING", reason)

        # Only the lost content is left; building again heals it.
        status, report = self.verify()
        self.assertEqual(2, report["found"])  # the flipped file is lost too
        status, _, stderr = lp_oci("run", "--sample", "--state", self.state)
        self.assertEqual(0, status, stderr)
        status, report = self.verify()
        self.assertEqual(0, status, report)

    def test_repair_leaves_what_a_storing_process_may_use(self):
        orphan = hashlib.sha256(b"orphan").hexdigest()
        os.makedirs(os.path.dirname(self.path(orphan)), exist_ok=True)
        with open(self.path(orphan), "wb") as f:
            f.write(b"orphan")
        young = os.path.join(self.librarian, "incoming", ".tmp-young")
        old = os.path.join(self.librarian, "incoming", ".tmp-old")
        for path in (young, old):
            with open(path, "wb") as f:
                f.write(b"partial")
        past = time.time() - 7200
        os.utime(old, (past, past))
        # Another process is between storing content and committing.
        fd = os.open(os.path.join(self.librarian, ".in-use"), os.O_RDWR)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_SH)
        status, report = self.verify()
        self.assertEqual(1, status, report)
        self.assertEqual(3, report["found"])
        self.assertEqual(1, report["problems"])  # Only the old file.
        self.assertEqual(
            [True, False, True],
            [report["orphans"][0]["in_use"]]
            + [entry["in_use"] for entry in report["temporary_files"]],
        )
        status, report = self.verify("--repair")
        self.assertEqual(0, status)
        self.assertEqual(
            "skipped: librarian in use", report["orphans"][0]["repair"]
        )
        self.assertTrue(os.path.exists(self.path(orphan)))
        self.assertTrue(os.path.exists(young))
        self.assertFalse(os.path.exists(old))
        fcntl.flock(fd, fcntl.LOCK_UN)
        status, report = self.verify("--repair")
        self.assertEqual(0, status, report)
        self.assertFalse(os.path.exists(self.path(orphan)))
        self.assertFalse(os.path.exists(young))

    def test_live_build_is_not_stuck(self):
        # A process holding the state lock and owning the build, as
        # lp-oci run does.
        from lpoci.runlock import RunLock
        from lpoci.statelock import StateLock

        self.sql("UPDATE OCIRecipeBuild SET status = 6")  # BUILDING
        with StateLock(self.state, "run"), RunLock(self.state, "run") as run:
            run.own("build:1")
            status, report = self.verify()
        self.assertEqual(0, status, report)
        status, report = self.verify()
        self.assertEqual(1, status)
        self.assertEqual(1, report["stuck_builds"][0]["build_id"])

    def test_no_state(self):
        status, stdout, stderr = lp_oci(
            "verify", "--state", os.path.join(self.state, "nope")
        )
        self.assertEqual(1, status)
        self.assertEqual("", stdout)
        self.assertEqual(1, len(stderr.splitlines()), stderr)
        self.assertTrue(stderr.startswith("lp-oci: error: no state"))

    def test_corrupt_database(self):
        with open(os.path.join(self.state, "launchpad.db"), "r+b") as f:
            f.write(b"garbage" * 100)
        status, stdout, stderr = lp_oci("verify", "--state", self.state)
        self.assertEqual(1, status)
        self.assertEqual("", stdout)
        self.assertEqual(1, len(stderr.splitlines()), stderr)
        self.assertIn("lp-oci: error: cannot use the database of", stderr)
