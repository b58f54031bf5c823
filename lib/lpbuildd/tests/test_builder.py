# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the builder's build state."""

__all__ = []

import hashlib
import os

from fixtures import TempDir
from testtools import TestCase
from testtools.matchers import ContainsDict, Equals

from lpbuildd.builder import Builder, BuilderStatus, BuildStatus


def sha1_hex(content):
    return hashlib.sha1(content).hexdigest()


def make_file(directory, name, content):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(content)
    return path


class TestBuilderState(TestCase):
    def setUp(self):
        super().setUp()
        self.cache_dir = self.useFixture(TempDir()).path
        self.work_dir = self.useFixture(TempDir()).path
        self.builder = Builder(self.cache_dir)
        self.addCleanup(self.builder.reset)

    def test_idle(self):
        self.assertEqual(
            {"builder_status": BuilderStatus.IDLE}, self.builder.status()
        )

    def test_building_then_waiting(self):
        self.builder.startBuild("1-1")
        self.builder.log("some log\n")
        status = self.builder.status()
        self.assertEqual(BuilderStatus.BUILDING, status["builder_status"])
        self.assertEqual(b"some log\n", status["logtail"].data)
        path = make_file(self.work_dir, "manifest.json", b"{}")
        sha1 = self.builder.addWaitingFile(path)
        self.builder.buildComplete()
        self.assertThat(
            self.builder.status(),
            ContainsDict(
                {
                    "builder_status": Equals(BuilderStatus.WAITING),
                    "build_status": Equals(BuildStatus.OK),
                    "build_id": Equals("1-1"),
                    "filemap": Equals({"manifest.json": sha1}),
                }
            ),
        )

    def test_buildComplete_with_status(self):
        self.builder.startBuild("1-1")
        self.builder.buildComplete("PACKAGEFAIL")
        self.assertEqual(
            BuildStatus.PACKAGEFAIL, self.builder.status()["build_status"]
        )

    def test_buildComplete_files_the_log(self):
        # The master fetches the log from the cache by the SHA-1 that
        # status() reports, and clean() removes it.
        self.builder.startBuild("1-1")
        self.builder.log("step 1\nstep 2\n")
        self.builder.buildComplete("PACKAGEFAIL")
        sha1 = self.builder.status()["build_log_sha1"]
        self.assertEqual(sha1_hex(b"step 1\nstep 2\n"), sha1)
        with open(self.builder.cachePath(sha1), "rb") as f:
            self.assertEqual(b"step 1\nstep 2\n", f.read())
        # Later writes do not change the filed copy.
        self.builder.log("more\n")
        self.assertTrue(self.builder.cache.contains(sha1))
        with open(self.builder.cachePath(sha1), "rb") as f:
            self.assertEqual(b"step 1\nstep 2\n", f.read())
        self.builder.clean()
        self.assertFalse(self.builder.cache.contains(sha1))

    def test_buildComplete_unknown_status(self):
        self.builder.startBuild("1-1")
        self.assertRaises(ValueError, self.builder.buildComplete, "BOGUS")

    def test_no_build_status_filemap_when_builder_failed(self):
        self.builder.startBuild("1-1")
        self.builder.buildComplete("BUILDERFAIL")
        self.assertNotIn("filemap", self.builder.status())

    def test_addWaitingFile_refuses_bad_names(self):
        path = make_file(self.work_dir, "a", b"a")
        for name in ("a/b", ".hidden", "", "..", "a\0b"):
            self.assertRaises(
                ValueError, self.builder.addWaitingFile, path, name=name
            )
        self.assertEqual({}, self.builder.waitingfiles)

    def test_startBuild_requires_idle(self):
        self.builder.startBuild("1-1")
        self.assertRaises(ValueError, self.builder.startBuild, "1-2")

    def test_clean_removes_waiting_files(self):
        self.builder.startBuild("1-1")
        sha1 = self.builder.addWaitingFile(make_file(self.work_dir, "a", b"a"))
        self.builder.buildComplete()
        self.builder.clean()
        self.assertEqual(BuilderStatus.IDLE, self.builder.builderstatus)
        self.assertFalse(self.builder.cache.contains(sha1))
        self.assertEqual({}, self.builder.waitingfiles)

    def test_clean_requires_waiting(self):
        self.assertRaises(ValueError, self.builder.clean)

    def test_abort(self):
        self.builder.startBuild("1-1")
        self.builder.abort()
        self.assertEqual(BuilderStatus.ABORTING, self.builder.builderstatus)
        self.builder.buildComplete()
        self.assertEqual(BuildStatus.ABORTED, self.builder.buildstatus)
