# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The life of an `lp-oci` process: locks, sweeping, signals, failures.

Processes are real and die for real (SIGKILL, SIGTERM); the kill
points are the named checkpoints of `ocitypes.faultpoint`.
"""

__all__ = []

import fcntl
import json
import os
import pty
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

from fixtures import TempDir
from testtools import TestCase

from lp.services.librarian.storage import LibrarianStorage
from lpbuildd.ociimage.layout import LOCK_NAME, LayoutWriter
from lpbuildd.ociimage.tests.helpers import CHILD_ENV
from lpbuildd.tests.archivebuilder import (
    docker25_classic,
    make_image,
    make_layer,
)
from lpoci.runlock import (
    RunLock,
    is_locked,
    live_runs,
    owner_of,
    sweep_work_dirs,
    work_root,
)


def child_env(**extra):
    env = {
        k: v
        for k, v in CHILD_ENV.items()
        if not k.startswith(("LP_DATABASE", "LP_LIBRARIAN", "LP_OCI_"))
    }
    env.update(extra)
    return env


def lp_oci(*args, env=None, timeout=180, **kwargs):
    kwargs.setdefault("capture_output", True)
    return subprocess.run(
        [sys.executable, "-m", "lpoci.cli", *args],
        env=env or child_env(),
        timeout=timeout,
        text=True,
        **kwargs,
    )


def python(code, env=None):
    """Run ``code`` in a child Python; return the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env or child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def builds(state):
    db = sqlite3.connect(os.path.join(state, "launchpad.db"))
    try:
        return db.execute(
            "SELECT id, status, failure_reason FROM OCIRecipeBuild "
            "ORDER BY id"
        ).fetchall()
    finally:
        db.close()


class TestRunLock(TestCase):
    def setUp(self):
        super().setUp()
        self.state = self.useFixture(TempDir()).path

    def test_owner_of_live_run(self):
        with RunLock(self.state, "run") as lock:
            lock.own("build:7")
            (run,) = live_runs(self.state)
            self.assertEqual(os.getpid(), run["pid"])
            self.assertEqual("run", run["command"])
            self.assertEqual(lock.path, run["path"])
            self.assertEqual(run, owner_of(self.state, "build:7"))
            self.assertIsNone(owner_of(self.state, "build:8"))
            # A live run's directory is never swept.
            self.assertEqual([], sweep_work_dirs(self.state))
            self.assertTrue(os.path.isdir(lock.path))
        self.assertFalse(os.path.exists(lock.path))
        self.assertIsNone(owner_of(self.state, "build:7"))

    def test_dead_run_is_swept(self):
        # A process that takes the lock and dies by SIGKILL.
        child = python(
            "import os, signal\n"
            "from lpoci.runlock import RunLock\n"
            f"lock = RunLock({self.state!r}, 'run').acquire()\n"
            "lock.own('build:1')\n"
            "open(os.path.join(lock.subdir('cache'), 'x'), 'w').close()\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n"
        )
        self.assertEqual(-signal.SIGKILL, child.returncode, child.stderr)
        (name,) = os.listdir(work_root(self.state))
        self.assertIsNone(owner_of(self.state, "build:1"))
        self.assertEqual([], live_runs(self.state))
        removed = sweep_work_dirs(self.state)
        self.assertEqual([os.path.join(work_root(self.state), name)], removed)
        self.assertEqual([], os.listdir(work_root(self.state)))

    def test_unlocked_new_directory_has_grace(self):
        # A directory whose creator has not locked it yet is left alone
        # for a minute, then swept.
        os.makedirs(os.path.join(work_root(self.state), "new"))
        self.assertEqual([], sweep_work_dirs(self.state))
        later = time.time() + 3600
        self.assertEqual(1, len(sweep_work_dirs(self.state, now=later)))

    def test_tempdir(self):
        with RunLock(self.state, "run") as lock:
            with lock.tempdir() as tmp:
                self.assertEqual(tmp, tempfile.gettempdir())
                self.assertEqual(tmp, os.environ["TMPDIR"])
            self.assertNotEqual(tmp, tempfile.gettempdir())


class TestGatherSiblings(TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(TempDir()).path

    def kill_writer(self, name):
        child = python(
            "import os, signal\n"
            "from lpbuildd.ociimage.layout import LayoutWriter\n"
            f"w = LayoutWriter(os.path.join({self.tmp!r}, {name!r}))\n"
            "w.add_blob_bytes(b'x' * 100)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n"
        )
        self.assertEqual(-signal.SIGKILL, child.returncode, child.stderr)

    def test_dead_sibling_swept_by_next_writer(self):
        self.kill_writer("out")
        (sibling,) = os.listdir(self.tmp)
        self.assertTrue(sibling.startswith(".out."))
        # Not ours: a hidden directory of the same shape without a lock.
        foreign = os.path.join(self.tmp, ".keep.abcdefgh")
        os.makedirs(foreign)
        open(os.path.join(foreign, "precious"), "w").close()
        writer = LayoutWriter(os.path.join(self.tmp, "other"))
        try:
            names = sorted(os.listdir(self.tmp))
            self.assertNotIn(sibling, names)
            self.assertIn(".keep.abcdefgh", names)
            # The live writer's own sibling survives another sweep.
            live = os.path.basename(writer.tmpdir)
            LayoutWriter(os.path.join(self.tmp, "third")).abort()
            self.assertIn(live, os.listdir(self.tmp))
            self.assertTrue(is_locked(os.path.join(writer.tmpdir, LOCK_NAME)))
        finally:
            writer.abort()
        self.assertEqual([".keep.abcdefgh"], os.listdir(self.tmp))

    def test_sigterm_leaves_no_sibling(self):
        # gather is interrupted with SIGTERM as it moves its first blob.
        image = make_image(layers=[make_layer(seed=1), make_layer(seed=2)])
        archive = os.path.join(self.tmp, "save.tar")
        docker25_classic([image]).write(archive)
        result = lp_oci(
            "gather",
            archive,
            "-o",
            os.path.join(self.tmp, "out"),
            env=child_env(LP_OCI_FAULTPOINT="gather.blob:1:TERM"),
        )
        self.assertEqual(128 + signal.SIGTERM, result.returncode)
        self.assertEqual(
            "lp-oci: error: interrupted (SIGTERM)\n", result.stderr
        )
        self.assertEqual(["save.tar"], os.listdir(self.tmp))


class TestLibrarianSweep(TestCase):
    def test_only_dead_old_temporary_files(self):
        root = self.useFixture(TempDir()).path
        storage = LibrarianStorage(root)
        dead = os.path.join(storage.incoming, ".tmp-dead")
        young = os.path.join(storage.incoming, f".tmp-{os.getpid()}-y")
        live = os.path.join(storage.incoming, ".tmp-live")
        for path in (dead, young, live):
            open(path, "w").close()
        old = time.time() - 3600
        os.utime(dead, (old, old))
        # A live writer: a lock held by another open file.
        fd = os.open(live, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        # ctime cannot be set back: judge as if an hour had passed.
        later = time.time() + 3600
        removed = storage.sweepIncoming(now=later)
        self.assertEqual(sorted([dead, young]), sorted(removed))
        self.assertEqual([".tmp-live"], os.listdir(storage.incoming))
        # Young, unlocked: kept while its writer may live, removed at
        # once if the process its name gives is gone.
        open(young, "w").close()
        self.assertEqual([], storage.sweepIncoming())
        gone = python("import os; print(os.getpid())")
        orphan = os.path.join(storage.incoming, f".tmp-{int(gone.stdout)}-abc")
        open(orphan, "w").close()
        self.assertEqual([orphan], storage.sweepIncoming())


class TestRunLifecycle(TestCase):
    """``lp-oci run`` killed and interrupted at named checkpoints."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(TempDir()).path
        self.state = os.path.join(self.tmp, "var")

    def run_sample(self, *args, **env):
        return lp_oci(
            "run",
            "--sample",
            "--state",
            self.state,
            *args,
            env=child_env(**env),
        )

    def test_sigterm_while_collecting(self):
        result = self.run_sample(LP_OCI_FAULTPOINT="fetch.files:1:TERM")
        self.assertEqual(128 + signal.SIGTERM, result.returncode)
        self.assertEqual(
            "lp-oci: error: interrupted (SIGTERM)",
            result.stderr.splitlines()[-1],
        )
        self.assertNotIn("Traceback", result.stderr)
        # Failed now, with the reason; nothing left in the work area.
        # (The files being collected when the signal came are moved
        # into incoming before the reactor stops: UPLOADING.)
        ((_, status, reason),) = builds(self.state)
        self.assertEqual(7, status)  # FAILEDTOUPLOAD
        self.assertEqual("Interrupted (SIGTERM) while UPLOADING", reason)
        self.assertEqual([], os.listdir(work_root(self.state)))

    def test_sigkill_then_rerun_recovers(self):
        killed = self.run_sample(LP_OCI_FAULTPOINT="fetch.file:1")
        self.assertEqual(-signal.SIGKILL, killed.returncode)
        self.assertEqual(1, len(os.listdir(work_root(self.state))))
        ((_, status, _),) = builds(self.state)
        self.assertEqual(11, status)  # GATHERING, stranded
        rerun = self.run_sample("--json")
        self.assertEqual(0, rerun.returncode, rerun.stderr)
        self.assertEqual(2, json.loads(rerun.stdout)["build_id"])
        self.assertEqual(
            [
                (
                    1,
                    7,
                    "Abandoned: the lp-oci process running the build "
                    "died while GATHERING",
                ),
                (2, 1, None),
            ],
            builds(self.state),
        )
        self.assertEqual([], os.listdir(work_root(self.state)))

    def test_orphan_of_killed_run_removed(self):
        # Killed after storing the build log, before committing its row.
        killed = self.run_sample(LP_OCI_FAULTPOINT="librarian.stored:1")
        self.assertEqual(-signal.SIGKILL, killed.returncode)
        rerun = self.run_sample()
        self.assertEqual(0, rerun.returncode, rerun.stderr)
        self.assertIn("that no row refers to", rerun.stderr)
        db = sqlite3.connect(os.path.join(self.state, "launchpad.db"))
        self.addCleanup(db.close)
        rows = {
            r for (r,) in db.execute("SELECT sha256 FROM LibraryFileContent")
        }
        librarian = os.path.join(self.state, "librarian")
        stored = {
            name
            for d in os.listdir(librarian)
            if len(d) == 2
            for name in os.listdir(os.path.join(librarian, d))
        }
        self.assertEqual(rows, stored)

    def test_live_run_not_stranded(self):
        # While a run is stopped mid-build, its build is not stranded:
        # its owner is alive.
        first = subprocess.Popen(
            [sys.executable, "-m", "lpoci.cli", "run", "--sample"]
            + ["--state", self.state],
            env=child_env(LP_OCI_FAULTPOINT="fetch.files:1:STOP"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(first.wait)
        self.addCleanup(first.kill)
        deadline = time.time() + 120
        while time.time() < deadline:
            if builds_or_none(self.state) and live_runs(self.state):
                run = live_runs(self.state)[0]
                if "build:1" in run["owns"]:
                    if _stopped(first.pid):
                        break
            time.sleep(0.1)
        else:
            self.fail("the first run did not stop")
        check = python(
            "from lp.services.scripts import setup_services\n"
            "from lpoci.recovery import find_stranded\n"
            f"setup_services({self.state!r})\n"
            "builds, jobs = find_stranded(" + repr(self.state) + ")\n"
            "print([b.id for b in builds], len(jobs))\n"
        )
        self.assertEqual("[] 0\n", check.stdout, check.stderr)
        first.kill()
        first.wait()
        check = python(
            "from lp.services.scripts import setup_services\n"
            "from lpoci.recovery import find_stranded\n"
            f"setup_services({self.state!r})\n"
            "builds, jobs = find_stranded(" + repr(self.state) + ")\n"
            "print([b.id for b in builds], len(jobs))\n"
        )
        self.assertEqual("[1] 0\n", check.stdout, check.stderr)


def builds_or_none(state):
    try:
        return builds(state)
    except sqlite3.Error:
        return None


def _stopped(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


class TestOneLineFailures(TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(TempDir()).path
        self.state = os.path.join(self.tmp, "var")

    def assertOneLine(self, result, fragment, status=1):
        self.assertEqual(status, result.returncode, result.stderr)
        (line,) = result.stderr.splitlines()
        self.assertTrue(line.startswith("lp-oci: error: "), line)
        self.assertIn(fragment, line)

    def test_corrupt_database(self):
        os.makedirs(self.state)
        with open(os.path.join(self.state, "launchpad.db"), "wb") as f:
            f.write(os.urandom(8192))
        result = lp_oci("run", "--sample", "--state", self.state)
        self.assertOneLine(result, "launchpad.db")
        self.assertIn("not a database", result.stderr)

    def test_locked_database(self):
        self.assertEqual(
            0, lp_oci("run", "--sample", "--state", self.state).returncode
        )
        db = sqlite3.connect(
            os.path.join(self.state, "launchpad.db"), isolation_level=None
        )
        self.addCleanup(db.close)
        db.execute("BEGIN EXCLUSIVE")
        result = lp_oci("run", "--sample", "--state", self.state)
        self.assertNotEqual(0, result.returncode)
        self.assertNotIn("Traceback", result.stderr)
        line = result.stderr.splitlines()[-1]
        self.assertTrue(line.startswith("lp-oci: error: "), line)
        self.assertIn("launchpad.db", line)
        db.execute("ROLLBACK")

    def test_directory_as_archive(self):
        result = lp_oci("run", self.tmp, "--state", self.state)
        self.assertOneLine(result, f"archive {self.tmp} is a directory")
        result = lp_oci("gather", self.tmp, "-o", self.state)
        self.assertOneLine(result, self.tmp)
        self.assertIn("Is a directory", result.stderr)
        self.assertNotIn("empty", result.stderr)

    def test_stdin_terminal_refused(self):
        leader, follower = pty.openpty()
        self.addCleanup(os.close, leader)
        try:
            result = lp_oci(
                "gather",
                "-",
                "-o",
                os.path.join(self.tmp, "out"),
                stdin=follower,
            )
        finally:
            os.close(follower)
        self.assertOneLine(result, "stdin")
        self.assertIn("terminal", result.stderr)
        self.assertEqual(
            ["var"] if os.path.exists(self.state) else [], os.listdir(self.tmp)
        )

    def test_jobs_capped(self):
        result = lp_oci("gather", "x", "-o", "y", "--jobs", "100000")
        self.assertEqual(2, result.returncode)
        self.assertIn("--jobs must be at most", result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def test_closed_stdout_is_quiet(self):
        # ``lp-oci export -o - | head -c 1``: the reader goes away.
        self.assertEqual(
            0, lp_oci("run", "--sample", "--state", self.state).returncode
        )
        reader, writer = os.pipe()
        proc = subprocess.Popen(
            [sys.executable, "-m", "lpoci.cli", "export", "1"]
            + ["--state", self.state, "--format", "oci", "-o", "-"],
            stdout=writer,
            stderr=subprocess.PIPE,
            env=child_env(),
        )
        os.close(writer)
        os.read(reader, 1)
        os.close(reader)
        _, stderr = proc.communicate(timeout=60)
        self.assertEqual(0, proc.returncode, stderr)
        self.assertEqual(b"", stderr)
