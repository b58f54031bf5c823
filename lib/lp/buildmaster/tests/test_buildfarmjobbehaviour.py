# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `BuildFarmJobBehaviourBase`."""

__all__ = []

import os
import re
from xmlrpc.client import Binary

from fixtures import TempDir

from lp.buildmaster.enums import (
    BuildStatus,
    WorkerBuilderStatus,
    WorkerBuildStatus,
)
from lp.buildmaster.interactor import BuilderFileNotFound
from lp.buildmaster.interfaces.builder import BuildDaemonError
from lp.buildmaster.model.buildfarmjobbehaviour import (
    MAX_FILE_NAME_LENGTH,
    BuildFarmJobBehaviourBase,
    check_builder_file_name,
)
from lp.oci.tests.buildfarm import upload_files_dir
from lp.testing import TestCase, TestCaseWithFactory
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)

SHA1 = "a" * 40


class FakeWorker:
    """Records what the behaviour asks of the builder.

    Like `BuilderWorker`, it refuses to fetch a malformed SHA-1.
    """

    def __init__(self, contents=None, missing=()):
        self.contents = contents or {}
        self.missing = set(missing)
        self.fetched = []
        self.cleaned = 0

    def getFiles(self, files, logger=None, max_concurrency=None):
        for sha1, path in files:
            self.getFile(sha1, path)

    def getFile(self, sha1, path, logger=None):
        if not re.fullmatch(r"[0-9a-f]{40}", sha1):
            raise ValueError(f"Not a SHA-1: {sha1!r}")
        if sha1 in self.missing:
            raise BuilderFileNotFound(sha1, "builder has no file", sha1=sha1)
        self.fetched.append(sha1)
        with open(path, "wb") as f:
            f.write(self.contents.get(sha1, b"data"))

    def clean(self):
        self.cleaned += 1


class TestCheckBuilderFileName(TestCase):
    def test_accepts_plain_names(self):
        directory = self.useFixture(TempDir()).path
        for name in (
            "index.json",
            "blobs-sha256-" + "a" * 64,
            "a..b",
            "a" * MAX_FILE_NAME_LENGTH,
        ):
            self.assertEqual(
                os.path.join(os.path.realpath(directory), name),
                check_builder_file_name(name, directory),
            )

    def test_refuses_escapes(self):
        directory = self.useFixture(TempDir()).path
        for name in (
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "/etc/passwd",
            ".hidden",
            "a\0b",
            "a\\b",
            None,
            7,
            # Too long for a download's temporary name beside it.
            "a" * (MAX_FILE_NAME_LENGTH + 1),
            "\u00e9" * (MAX_FILE_NAME_LENGTH // 2 + 1),
        ):
            self.assertRaises(
                BuildDaemonError, check_builder_file_name, name, directory
            )


class BehaviourTestMixin:
    def makeBehaviour(self, worker=None):
        build = self.factory.makeOCIRecipeBuild()
        self.upload_root = self.useFixture(TempDir()).path
        behaviour = BuildFarmJobBehaviourBase(
            build, upload_root=self.upload_root
        )
        self.worker = worker or FakeWorker()
        behaviour.setBuilder(None, self.worker)
        return behaviour

    def status(self, behaviour, build_status=None, **kwargs):
        status = {
            "builder_status": WorkerBuilderStatus.WAITING,
            "build_id": behaviour.build_cookie,
        }
        if build_status is not None:
            status["build_status"] = build_status
        status.update(kwargs)
        return status

    def assertNothingCollected(self):
        for state in ("grabbing", "incoming"):
            directory = os.path.join(self.upload_root, state)
            if os.path.isdir(directory):
                self.assertEqual([], os.listdir(directory))

    def test_build_cookie(self):
        behaviour = self.makeBehaviour()
        cookie = behaviour.build_cookie
        self.assertEqual("OCIRECIPEBUILD-%d" % behaviour.build.id, cookie)

    def test_building_marks_build_started(self):
        behaviour = self.makeBehaviour()
        status = self.status(
            behaviour, builder_status=WorkerBuilderStatus.BUILDING
        )
        self.assertIsNone(behaviour.handleStatus(status))
        self.assertEqual(BuildStatus.BUILDING, behaviour.build.status)
        self.assertIsNotNone(behaviour.build.date_started)
        self.assertEqual(0, self.worker.cleaned)

    def test_idle_builder_is_an_error(self):
        behaviour = self.makeBehaviour()
        self.assertRaises(
            BuildDaemonError,
            behaviour.handleStatus,
            {"builder_status": WorkerBuilderStatus.IDLE},
        )

    def test_other_build_is_an_error(self):
        behaviour = self.makeBehaviour()
        status = self.status(behaviour, WorkerBuildStatus.OK)
        status["build_id"] = "OCIRECIPEBUILD-999999"
        self.assertRaises(BuildDaemonError, behaviour.handleStatus, status)

    def test_failures(self):
        cases = [
            (WorkerBuildStatus.PACKAGEFAIL, BuildStatus.FAILEDTOBUILD),
            (WorkerBuildStatus.DEPFAIL, BuildStatus.MANUALDEPWAIT),
            (WorkerBuildStatus.CHROOTFAIL, BuildStatus.CHROOTWAIT),
            (WorkerBuildStatus.ABORTED, BuildStatus.CANCELLED),
        ]
        for build_status, expected in cases:
            behaviour = self.makeBehaviour()
            status = self.status(
                behaviour,
                build_status,
                logtail=Binary(b"step 1\nno space left on device\n\n"),
                dependencies="libfoo-dev",
            )
            self.assertIsNone(behaviour.handleStatus(status))
            self.assertEqual(expected, behaviour.build.status)
            self.assertIsNotNone(behaviour.build.failure_reason)
            self.assertEqual(1, self.worker.cleaned)
        behaviour = self.makeBehaviour()
        behaviour.handleStatus(
            self.status(
                behaviour,
                WorkerBuildStatus.PACKAGEFAIL,
                logtail=Binary(b"step 1\nno space left on device\n"),
            )
        )
        self.assertEqual(
            "The build failed on the builder: no space left on device",
            behaviour.build.failure_reason,
        )

    def test_given_back(self):
        for build_status, failures in (
            (WorkerBuildStatus.GIVENBACK, 0),
            (WorkerBuildStatus.BUILDERFAIL, 1),
        ):
            behaviour = self.makeBehaviour()
            behaviour.build.updateStatus(BuildStatus.BUILDING)
            behaviour.handleStatus(self.status(behaviour, build_status))
            self.assertEqual(BuildStatus.NEEDSBUILD, behaviour.build.status)
            self.assertEqual(failures, behaviour.build.failure_count)

    def test_unknown_build_status(self):
        behaviour = self.makeBehaviour()
        self.assertRaises(
            BuildDaemonError,
            behaviour.handleStatus,
            self.status(behaviour, "BuildStatus.WHATEVER"),
        )

    def test_success_downloads_every_file(self):
        worker = FakeWorker({"1" * 40: b"one", "2" * 40: b"two"})
        behaviour = self.makeBehaviour(worker)
        upload_path = behaviour.handleStatus(
            self.status(
                behaviour,
                WorkerBuildStatus.OK,
                filemap={"one.txt": "1" * 40, "two.txt": "2" * 40},
            )
        )
        self.assertEqual(BuildStatus.UPLOADING, behaviour.build.status)
        self.assertEqual(
            os.path.join(self.upload_root, "incoming"),
            os.path.dirname(upload_path),
        )
        self.assertEqual(
            ["one.txt", "two.txt"],
            sorted(os.listdir(upload_files_dir(behaviour.build, upload_path))),
        )
        self.assertEqual(
            [], os.listdir(os.path.join(self.upload_root, "grabbing"))
        )
        self.assertEqual(1, worker.cleaned)

    def test_hostile_names_are_refused_before_fetching(self):
        for name in ("../escape", "a/b", ".hidden", "..", "a\0b", ""):
            behaviour = self.makeBehaviour()
            upload_path = behaviour.handleStatus(
                self.status(
                    behaviour,
                    WorkerBuildStatus.OK,
                    filemap={"fine.txt": SHA1, name: SHA1},
                )
            )
            self.assertIsNone(upload_path)
            self.assertEqual(
                BuildStatus.FAILEDTOUPLOAD, behaviour.build.status
            )
            self.assertIn(
                "Build returned a file named", behaviour.build.failure_reason
            )
            self.assertEqual([], self.worker.fetched)
            self.assertNothingCollected()
            self.assertFalse(
                os.path.exists(os.path.join(self.upload_root, "escape"))
            )

    def test_malformed_sha1_fails_the_build(self):
        # Used to escape from the worker as a ValueError, leaving the
        # build GATHERING.
        for sha1 in ("not-a-sha1", "A" * 40, "a" * 41, "../" + "a" * 37):
            behaviour = self.makeBehaviour()
            upload_path = behaviour.handleStatus(
                self.status(
                    behaviour,
                    WorkerBuildStatus.OK,
                    filemap={"one.txt": "1" * 40, "two.txt": sha1},
                )
            )
            self.assertIsNone(upload_path)
            self.assertEqual(
                BuildStatus.FAILEDTOUPLOAD, behaviour.build.status
            )
            self.assertIn(
                "Builder returned a bad SHA-1 for 'two.txt'",
                behaviour.build.failure_reason,
            )
            self.assertEqual([], self.worker.fetched)
            self.assertNothingCollected()

    def test_missing_filemap(self):
        behaviour = self.makeBehaviour()
        behaviour.handleStatus(self.status(behaviour, WorkerBuildStatus.OK))
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, behaviour.build.status)
        self.assertIn("no filemap", behaviour.build.failure_reason)

    def test_fetch_failure_fails_the_build_cleanly(self):
        worker = FakeWorker(missing={"2" * 40})
        behaviour = self.makeBehaviour(worker)
        upload_path = behaviour.handleStatus(
            self.status(
                behaviour,
                WorkerBuildStatus.OK,
                filemap={"one.txt": "1" * 40, "two.txt": "2" * 40},
            )
        )
        self.assertIsNone(upload_path)
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, behaviour.build.status)
        self.assertIn("builder has no file", behaviour.build.failure_reason)
        self.assertNothingCollected()

    def test_finished_build_is_not_collected(self):
        behaviour = self.makeBehaviour()
        behaviour.build.updateStatus(BuildStatus.FULLYBUILT)
        self.assertRaises(
            AssertionError,
            behaviour.handleSuccess,
            self.status(behaviour, WorkerBuildStatus.OK, filemap={}),
        )


class TestBuildFarmJobBehaviourBase(BehaviourTestMixin, TestCaseWithFactory):
    layer = LaunchpadZopelessLayer


class TestBuildFarmJobBehaviourBaseSQLite(
    BehaviourTestMixin, TestCaseWithFactory
):
    layer = SQLiteLaunchpadZopelessLayer
