# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for ``lp-oci export``, run as a real process on a real state.

The state is made once by ``lp-oci run``: build 1 of the sample image
(FULLYBUILT) and build 2 of an archive that is not one (FAILEDTOBUILD).
"""

__all__ = []

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

from fixtures import TempDir
from testtools import TestCase

from lpbuildd.ociimage.tests.helpers import CHILD_ENV
from lpoci.export import _write_file


def lp_oci(*args, cwd=None):
    proc = subprocess.run(
        [sys.executable, "-m", "lpoci.cli", *args],
        capture_output=True,
        env=CHILD_ENV,
        cwd=cwd,
        timeout=120,
    )
    return proc.returncode, proc.stdout, proc.stderr.decode("UTF-8")


class ExportStateLayer:
    """A state made by ``lp-oci run``, shared by the layer's tests."""

    state = None

    @classmethod
    def setUp(cls):
        cls.state_parent = tempfile.mkdtemp(prefix="lp-oci-export-test-")
        cls.state = os.path.join(cls.state_parent, "state")
        status, _, stderr = lp_oci("run", "--sample", "--state", cls.state)
        if status != 0:
            raise RuntimeError(stderr)
        bad = os.path.join(cls.state_parent, "bad.tar")
        with open(bad, "wb") as f:
            f.write(b"not an archive" * 100)
        status, _, stderr = lp_oci("run", bad, "--state", cls.state)
        if status != 1:
            raise RuntimeError(stderr)

    @classmethod
    def tearDown(cls):
        shutil.rmtree(cls.state_parent, ignore_errors=True)

    @classmethod
    def testSetUp(cls):
        pass

    @classmethod
    def testTearDown(cls):
        pass


class TestExportCommand(TestCase):
    layer = ExportStateLayer

    def setUp(self):
        super().setUp()
        self.out = self.useFixture(TempDir()).path

    def export(self, *args, build="1", state=None):
        return lp_oci(
            "export", build, "--state", state or self.layer.state, *args
        )

    def assertFailedCleanly(self, result, fragment, status=1):
        code, stdout, stderr = result
        self.assertEqual(status, code, stderr)
        self.assertEqual(b"", stdout)
        (line,) = stderr.splitlines()
        self.assertTrue(line.startswith("lp-oci: error: "), line)
        self.assertIn(fragment, line)
        self.assertEqual([], os.listdir(self.out))

    def test_export_to_file_and_stdout(self):
        for format in ("oci", "docker"):
            path = os.path.join(self.out, f"{format}.tar")
            status, stdout, stderr = self.export(
                "--format", format, "-o", path, "--json"
            )
            self.assertEqual(0, status, stderr)
            summary = json.loads(stdout)
            with open(path, "rb") as f:
                data = f.read()
            self.assertEqual(len(data), summary["size"])
            self.assertEqual(
                hashlib.sha256(data).hexdigest(), summary["sha256"]
            )
            self.assertEqual(format, summary["format"])
            self.assertEqual(1, summary["build_id"])
            (image,) = summary["images"]
            self.assertEqual("linux/amd64", image["platform"])
            self.assertEqual(
                ["docker.io/lp-oci/sample:latest"], image["names"]
            )
            status, piped, stderr = self.export("--format", format, "-o", "-")
            self.assertEqual(0, status, stderr)
            self.assertEqual(data, piped)
        self.assertEqual(
            ["docker.tar", "oci.tar"], sorted(os.listdir(self.out))
        )

    def test_text_summary(self):
        path = os.path.join(self.out, "a.tar")
        status, stdout, stderr = self.export("--format", "oci", "-o", path)
        self.assertEqual(0, status, stderr)
        lines = stdout.decode("UTF-8").splitlines()
        self.assertEqual(f"build 1: oci archive {path}", lines[0])
        self.assertEqual(f"size: {os.path.getsize(path)}", lines[1])

    def test_unknown_build(self):
        self.assertFailedCleanly(
            self.export(
                "--format",
                "oci",
                "-o",
                os.path.join(self.out, "a"),
                build="99",
            ),
            f"no build 99 in {self.layer.state}",
        )

    def test_build_not_fullybuilt(self):
        self.assertFailedCleanly(
            self.export(
                "--format",
                "oci",
                "-o",
                os.path.join(self.out, "a"),
                build="2",
            ),
            "Build 2 is FAILEDTOBUILD, not FULLYBUILT",
        )

    def test_no_state(self):
        self.assertFailedCleanly(
            self.export(
                "--format",
                "oci",
                "-o",
                os.path.join(self.out, "a"),
                state=os.path.join(self.out, "nowhere"),
            ),
            "no Launchpad state in",
        )

    def test_unwritable_output(self):
        self.assertFailedCleanly(
            self.export(
                "--format",
                "docker",
                "-o",
                os.path.join(self.out, "missing", "a.tar"),
            ),
            "cannot write",
        )
        os.mkdir(os.path.join(self.out, "dir"))
        code, _, stderr = self.export(
            "--format", "docker", "-o", os.path.join(self.out, "dir")
        )
        self.assertEqual(1, code)
        self.assertIn("is a directory", stderr)
        self.assertEqual([], os.listdir(os.path.join(self.out, "dir")))

    def test_json_needs_a_file(self):
        self.assertFailedCleanly(
            self.export("--format", "oci", "-o", "-", "--json"),
            "--json needs -o FILE",
            status=2,
        )

    def test_broken_librarian_leaves_nothing(self):
        # A copy of the state whose largest layer lost its end.
        state = os.path.join(self.useFixture(TempDir()).path, "state")
        shutil.copytree(self.layer.state, state)
        librarian = os.path.join(state, "librarian")
        paths = [
            os.path.join(dirpath, name)
            for dirpath, _, names in os.walk(librarian)
            for name in names
        ]
        path = max(paths, key=os.path.getsize)
        with open(path, "rb") as f:
            data = f.read()
        os.chmod(path, 0o644)
        with open(path, "wb") as f:
            f.write(data[:-100])
        self.assertFailedCleanly(
            self.export(
                "--format",
                "oci",
                "-o",
                os.path.join(self.out, "a.tar"),
                state=state,
            ),
            "is shorter than recorded",
        )


class FakeArchive:
    size = 3 * 1024

    def iterBytes(self):
        yield bytes(1024)
        raise KeyboardInterrupt()


class TestWriteFile(TestCase):
    def test_interrupted_export_leaves_nothing(self):
        out = self.useFixture(TempDir()).path
        self.assertRaises(
            KeyboardInterrupt,
            _write_file,
            FakeArchive(),
            os.path.join(out, "a.tar"),
            None,
        )
        self.assertEqual([], os.listdir(out))
