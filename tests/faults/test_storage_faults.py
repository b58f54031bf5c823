# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Full disks and read-only file systems under ``lp-oci run``.

Real file systems: size-limited tmpfs mounts that the test mounts and
unmounts (CI runs as root).  Where ``mount`` is not permitted the tests
skip: no fake raises ENOSPC for them.  Each fault ends the command with
one line naming the path or database, and a rerun once the space is
back succeeds with nothing false recorded.
"""

__all__ = []

import errno
import os
import random
import subprocess
import sys

from fixtures import TempDir
from testtools import TestCase

from lpbuildd.tests.archivebuilder import (
    docker25_classic,
    make_image,
    make_layer,
)
from ocitypes.testing import tool_missing
from tests.faults.invariants import (
    append_report,
    state_problems,
    verify_problems,
)
from tests.faults.test_kill_points import child_env


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    return subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
        capture_output=True,
    )


def fill(directory):
    """Write to ``directory`` until its file system is full."""
    path = os.path.join(directory, "filler")
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    return path


class TestStorageFaults(TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(TempDir()).path
        self.mounts = []

    def mount(self, name, size):
        path = os.path.join(self.tmp, name)
        result = mount_tmpfs(path, size)
        if result.returncode != 0:
            tool_missing(self, f"cannot mount a tmpfs: {result.stderr!r}")
        self.addCleanup(subprocess.run, ["umount", "-l", path])
        return path

    def archive(self, noise=0, seed=1):
        files = {"seed.txt": b"%d\n" % seed}
        if noise:
            files["noise.bin"] = random.Random(seed).randbytes(noise)
        path = os.path.join(self.tmp, f"image-{seed}-{noise}.tar")
        image = make_image(layers=[make_layer(files=files)])
        docker25_classic([image]).write(path)
        return path

    def run_lp_oci(self, archive, state, **env):
        return subprocess.run(
            [sys.executable, "-m", "lpoci.cli", "run", archive]
            + ["--state", state],
            capture_output=True,
            text=True,
            env=child_env(**env),
            timeout=180,
        )

    def assertOneLine(self, result, *fragments):
        self.assertEqual(1, result.returncode, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        line = result.stderr.splitlines()[-1]
        self.assertTrue(line.startswith("lp-oci: error: "), line)
        for fragment in fragments:
            self.assertIn(fragment, line)
        # Progress lines aside, the error is the only one.
        errors = [
            x for x in result.stderr.splitlines() if "error" in x.lower()
        ]
        self.assertEqual([line], errors)

    def test_librarian_disk_full(self):
        state = os.path.join(self.tmp, "var")
        librarian = self.mount("librarian", "512k")
        env = {"LP_LIBRARIAN_ROOT": librarian}
        result = self.run_lp_oci(self.archive(noise=1 << 20), state, **env)
        self.assertOneLine(result, librarian, "no space left on device")
        problems = state_problems(state, librarian)
        # Nothing half-stored: no temporary file, no content without
        # its row, no build FULLYBUILT.
        stored = [
            name
            for directory, _, names in os.walk(librarian)
            for name in names
            if not name.startswith(".")  # (the in-use lock)
        ]
        # (The build's log fits, and stays; the rest is removed.)
        self.assertLessEqual(len(stored), 1, stored)
        self.assertEqual([], problems)
        # Room again: the same archive goes through.
        subprocess.run(["mount", "-o", "remount,size=8m", librarian])
        rerun = self.run_lp_oci(self.archive(noise=1 << 20), state, **env)
        self.assertEqual(0, rerun.returncode, rerun.stderr)
        self.assertEqual([], state_problems(state, librarian))
        self.assertEqual([], verify_problems(state, child_env(**env)))
        append_report({"suite": "librarian-full", "faults": 1})

    def test_gather_disk_full_names_the_path(self):
        out = self.mount("out", "512k")
        archive = self.archive(noise=1 << 20)
        result = subprocess.run(
            [sys.executable, "-m", "lpoci.cli", "gather", archive]
            + ["-o", os.path.join(out, "layout")],
            capture_output=True,
            text=True,
            env=child_env(),
            timeout=180,
        )
        self.assertOneLine(result, f"{out}/", "no space left on device")
        self.assertEqual([], os.listdir(out))

    def test_read_only_copy_is_verified_and_exported(self):
        state = self.mount("var", "8m")
        first = self.run_lp_oci(self.archive(seed=1), state)
        self.assertEqual(0, first.returncode, first.stderr)
        remount = subprocess.run(["mount", "-o", "remount,ro", state])
        self.assertEqual(0, remount.returncode)
        self.addCleanup(subprocess.run, ["mount", "-o", "remount,rw", state])
        output = os.path.join(self.tmp, "export.tar")
        for args in (
            ["verify"],
            ["verify", "--json"],
            ["list"],
            ["show", "1"],
            ["export", "1", "--format", "oci", "-o", output],
        ):
            result = subprocess.run(
                [sys.executable, "-m", "lpoci.cli", *args, "--state", state],
                capture_output=True,
                text=True,
                env=child_env(),
                timeout=180,
            )
            self.assertEqual(0, result.returncode, f"{args}: {result.stderr}")
        self.assertTrue(os.path.getsize(output) > 0)

    def test_state_disk_full_at_commit(self):
        state = self.mount("var", "4m")
        librarian = os.path.join(self.tmp, "librarian")
        env = {"LP_LIBRARIAN_ROOT": librarian}
        first = self.run_lp_oci(self.archive(seed=1), state, **env)
        self.assertEqual(0, first.returncode, first.stderr)
        filler = fill(state)
        result = self.run_lp_oci(self.archive(seed=2), state, **env)
        self.assertOneLine(result, state, "no space left on device")
        os.unlink(filler)
        rerun = self.run_lp_oci(self.archive(seed=2), state, **env)
        self.assertEqual(0, rerun.returncode, rerun.stderr)
        self.assertEqual([], state_problems(state, librarian))
        self.assertEqual([], verify_problems(state, child_env(**env)))
        append_report({"suite": "state-full", "faults": 1})

    def test_database_disk_full_at_commit(self):
        # The database alone on a file system that fills: SQLite fails
        # as it commits the new build.
        state = os.path.join(self.tmp, "var")
        database = self.mount("db", "4m")
        env = {"LP_DATABASE_URI": f"sqlite:{database}/launchpad.db"}
        first = self.run_lp_oci(self.archive(seed=1), state, **env)
        self.assertEqual(0, first.returncode, first.stderr)
        filler = fill(database)
        result = self.run_lp_oci(self.archive(seed=2), state, **env)
        self.assertOneLine(result, f"database sqlite:{database}/launchpad.db")
        self.assertIn("full", result.stderr)
        os.unlink(filler)
        rerun = self.run_lp_oci(self.archive(seed=2), state, **env)
        self.assertEqual(0, rerun.returncode, rerun.stderr)
        append_report({"suite": "database-full", "faults": 1})

    def test_read_only_state(self):
        state = self.mount("var", "8m")
        first = self.run_lp_oci(self.archive(seed=1), state)
        self.assertEqual(0, first.returncode, first.stderr)
        remount = subprocess.run(["mount", "-o", "remount,ro", state])
        self.assertEqual(0, remount.returncode)
        try:
            result = self.run_lp_oci(self.archive(seed=2), state)
        finally:
            subprocess.run(["mount", "-o", "remount,rw", state])
        self.assertOneLine(result)
        self.assertTrue(
            "read-only" in result.stderr or "readonly" in result.stderr,
            result.stderr,
        )
        self.assertEqual([], state_problems(state))
        self.assertEqual([], verify_problems(state, child_env()))
        append_report({"suite": "read-only-state", "faults": 1})
