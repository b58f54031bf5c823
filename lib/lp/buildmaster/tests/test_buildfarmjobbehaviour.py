# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `BuildFarmJobBehaviourBase`."""

__all__ = []

import gzip
import hashlib
import os
from datetime import datetime
from xmlrpc.client import Binary

from fixtures import TempDir
from testtools.twistedsupport import (
    AsynchronousDeferredRunTest,
    assert_fails_with,
)
from twisted.internet import defer

from lp.buildmaster.enums import (
    BuildStatus,
    WorkerBuilderStatus,
    WorkerBuildStatus,
)
from lp.buildmaster.interfaces.builder import BuildDaemonError
from lp.buildmaster.model.buildfarmjobbehaviour import (
    MAX_FILE_NAME_LENGTH,
    BuildFarmJobBehaviourBase,
    check_builder_file_name,
)
from lp.buildmaster.tests.mock_workers import FakeWorker
from lp.testing import TestCase, TestCaseWithFactory
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)

SHA1 = "a" * 40
LOG = b"step 1\nstep 2\n"
LOG_SHA1 = hashlib.sha1(LOG).hexdigest()


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


class TestGetUploadDirLeaf(TestCase):
    def test_leaf(self):
        behaviour = BuildFarmJobBehaviourBase(None)
        self.assertEqual(
            "20260102-030405-OCIRECIPEBUILD-7",
            behaviour.getUploadDirLeaf(
                "OCIRECIPEBUILD-7", now=datetime(2026, 1, 2, 3, 4, 5)
            ),
        )


class BehaviourTestMixin:
    run_tests_with = AsynchronousDeferredRunTest.make_factory(timeout=30)

    def makeBehaviour(self, worker=None, status=None):
        build = self.factory.makeOCIRecipeBuild()
        self.builder = self.factory.makeBuilder()
        self.bq = self.factory.makeBuildQueue(build, builder=self.builder)
        if status is not None:
            build.updateStatus(status)
        self.upload_root = self.useFixture(TempDir()).path
        behaviour = BuildFarmJobBehaviourBase(
            build, upload_root=self.upload_root
        )
        self.worker = worker or FakeWorker({LOG_SHA1: LOG})
        behaviour.setBuilder(self.builder, self.worker)
        return behaviour

    def status(self, behaviour, build_status=None, **kwargs):
        status = {
            "builder_status": WorkerBuilderStatus.WAITING,
            "build_id": behaviour.build.build_cookie,
            "build_log_sha1": LOG_SHA1,
        }
        if build_status is not None:
            status["build_status"] = build_status
        status.update(kwargs)
        return status

    def uploadPath(self, behaviour):
        """The one directory the build's files were collected into."""
        incoming = os.path.join(self.upload_root, "incoming")
        (leaf,) = os.listdir(incoming)
        self.assertTrue(leaf.endswith("-" + behaviour.build.build_cookie))
        return os.path.join(
            incoming,
            leaf,
            str(behaviour.build.archive.id),
            behaviour.build.distribution.name,
        )

    def assertNothingCollected(self):
        for state in ("grabbing", "incoming"):
            directory = os.path.join(self.upload_root, state)
            if os.path.isdir(directory):
                self.assertEqual([], os.listdir(directory))

    def assertLogStored(self, build):
        self.assertIsNotNone(build.log)
        self.assertEqual("buildlog.txt.gz", build.log.filename)
        build.log.open()
        try:
            self.assertEqual(LOG, gzip.decompress(build.log.read()))
        finally:
            build.log.close()

    def assertDequeued(self, build):
        self.assertIsNone(build.buildqueue_record)

    def test_wrong_build_queue_is_an_error(self):
        behaviour = self.makeBehaviour()
        other = self.factory.makeBuildQueue()
        return assert_fails_with(
            behaviour.handleStatus(other, self.status(behaviour)),
            AssertionError,
        )

    @defer.inlineCallbacks
    def test_building_keeps_the_build_building(self):
        behaviour = self.makeBehaviour()
        status = self.status(
            behaviour, builder_status=WorkerBuilderStatus.BUILDING
        )
        yield behaviour.handleStatus(self.bq, status)
        self.assertEqual(BuildStatus.BUILDING, behaviour.build.status)
        self.assertIsNotNone(behaviour.build.date_started)
        self.assertIs(self.bq, behaviour.build.buildqueue_record)
        self.assertEqual([], self.worker.fetched)

    def test_other_build_is_an_error(self):
        behaviour = self.makeBehaviour()
        status = self.status(behaviour, WorkerBuildStatus.OK)
        status["build_id"] = "OCIRECIPEBUILD-999999"
        return assert_fails_with(
            behaviour.handleStatus(self.bq, status), BuildDaemonError
        )

    @defer.inlineCallbacks
    def test_failures(self):
        cases = [
            (WorkerBuildStatus.PACKAGEFAIL, BuildStatus.FAILEDTOBUILD),
            (WorkerBuildStatus.DEPFAIL, BuildStatus.MANUALDEPWAIT),
            (WorkerBuildStatus.CHROOTFAIL, BuildStatus.CHROOTWAIT),
        ]
        reasons = {}
        for build_status, expected in cases:
            behaviour = self.makeBehaviour()
            status = self.status(
                behaviour,
                build_status,
                logtail=Binary(b"step 1\nno space left on device\n\n"),
                dependencies="libfoo-dev",
            )
            yield behaviour.handleStatus(self.bq, status)
            build = behaviour.build
            self.assertEqual(expected, build.status)
            self.assertIsNotNone(build.failure_reason)
            self.assertLogStored(build)
            self.assertDequeued(build)
            self.assertEqual([LOG_SHA1], self.worker.fetched)
            reasons[build_status] = build.failure_reason
        self.assertEqual(
            "The build is waiting for dependencies: libfoo-dev",
            reasons[WorkerBuildStatus.DEPFAIL],
        )
        self.assertEqual(
            "The builder could not set up the build environment: "
            "no space left on device",
            reasons[WorkerBuildStatus.CHROOTFAIL],
        )
        behaviour = self.makeBehaviour()
        yield behaviour.handleStatus(
            self.bq,
            self.status(
                behaviour,
                WorkerBuildStatus.PACKAGEFAIL,
                logtail=Binary(b"step 1\nno space left on device\n"),
            ),
        )
        self.assertEqual(
            "The build failed on the builder: no space left on device",
            behaviour.build.failure_reason,
        )

    @defer.inlineCallbacks
    def test_aborted_while_cancelling_is_cancelled(self):
        behaviour = self.makeBehaviour(status=BuildStatus.CANCELLING)
        yield behaviour.handleStatus(
            self.bq, self.status(behaviour, WorkerBuildStatus.ABORTED)
        )
        self.assertEqual(BuildStatus.CANCELLED, behaviour.build.status)
        self.assertLogStored(behaviour.build)
        self.assertDequeued(behaviour.build)

    @defer.inlineCallbacks
    def test_given_back_builder_failed_and_aborted_are_for_the_manager(self):
        # As in Launchpad, the manager resets the job (or the builder)
        # when handleStatus raises BuildDaemonError.
        for build_status in (
            WorkerBuildStatus.GIVENBACK,
            WorkerBuildStatus.BUILDERFAIL,
            WorkerBuildStatus.ABORTED,
        ):
            behaviour = self.makeBehaviour()
            e = yield assert_fails_with(
                behaviour.handleStatus(
                    self.bq, self.status(behaviour, build_status)
                ),
                BuildDaemonError,
            )
            self.assertIn("unexpected status", str(e))
            self.assertEqual(BuildStatus.BUILDING, behaviour.build.status)
            self.assertIs(self.bq, behaviour.build.buildqueue_record)
            self.assertEqual([], self.worker.fetched)

    def test_unknown_build_status(self):
        behaviour = self.makeBehaviour()
        return assert_fails_with(
            behaviour.handleStatus(
                self.bq, self.status(behaviour, "BuildStatus.WHATEVER")
            ),
            BuildDaemonError,
        )

    def test_malformed_build_status(self):
        # Launchpad asserts; an assert would not survive python -O.
        behaviour = self.makeBehaviour()
        return assert_fails_with(
            behaviour.handleStatus(self.bq, self.status(behaviour, "OK")),
            BuildDaemonError,
        )

    @defer.inlineCallbacks
    def test_success_downloads_every_file(self):
        worker = FakeWorker(
            {"1" * 40: b"one", "2" * 40: b"two", LOG_SHA1: LOG}
        )
        behaviour = self.makeBehaviour(worker)
        yield behaviour.handleStatus(
            self.bq,
            self.status(
                behaviour,
                WorkerBuildStatus.OK,
                filemap={"one.txt": "1" * 40, "two.txt": "2" * 40},
            ),
        )
        build = behaviour.build
        self.assertEqual(BuildStatus.UPLOADING, build.status)
        upload_path = self.uploadPath(behaviour)
        self.assertEqual(
            ["one.txt", "two.txt"], sorted(os.listdir(upload_path))
        )
        with open(os.path.join(upload_path, "two.txt"), "rb") as f:
            self.assertEqual(b"two", f.read())
        self.assertEqual(
            [], os.listdir(os.path.join(self.upload_root, "grabbing"))
        )
        self.assertLogStored(build)
        self.assertDequeued(build)

    @defer.inlineCallbacks
    def test_log_fetched_by_launchpad_buildd_name_without_sha1(self):
        worker = FakeWorker({"buildlog": LOG})
        behaviour = self.makeBehaviour(worker)
        status = self.status(behaviour, WorkerBuildStatus.PACKAGEFAIL)
        del status["build_log_sha1"]
        yield behaviour.handleStatus(self.bq, status)
        self.assertEqual(["buildlog"], worker.fetched)
        self.assertLogStored(behaviour.build)

    @defer.inlineCallbacks
    def test_hostile_names_are_refused_before_fetching(self):
        for name in ("../escape", "a/b", ".hidden", "..", "a\0b", ""):
            behaviour = self.makeBehaviour()
            yield behaviour.handleStatus(
                self.bq,
                self.status(
                    behaviour,
                    WorkerBuildStatus.OK,
                    filemap={"fine.txt": SHA1, name: SHA1},
                ),
            )
            build = behaviour.build
            self.assertEqual(BuildStatus.FAILEDTOUPLOAD, build.status)
            self.assertIn("Build returned a file named", build.failure_reason)
            self.assertEqual([LOG_SHA1], self.worker.fetched)
            self.assertNothingCollected()
            self.assertDequeued(build)
            self.assertFalse(
                os.path.exists(os.path.join(self.upload_root, "escape"))
            )

    @defer.inlineCallbacks
    def test_malformed_sha1_fails_the_build(self):
        for sha1 in ("not-a-sha1", "A" * 40, "a" * 41, "../" + "a" * 37):
            behaviour = self.makeBehaviour()
            yield behaviour.handleStatus(
                self.bq,
                self.status(
                    behaviour,
                    WorkerBuildStatus.OK,
                    filemap={"one.txt": "1" * 40, "two.txt": sha1},
                ),
            )
            self.assertEqual(
                BuildStatus.FAILEDTOUPLOAD, behaviour.build.status
            )
            self.assertIn(
                "Builder returned a bad SHA-1 for 'two.txt'",
                behaviour.build.failure_reason,
            )
            self.assertEqual([LOG_SHA1], self.worker.fetched)
            self.assertNothingCollected()

    @defer.inlineCallbacks
    def test_missing_filemap(self):
        behaviour = self.makeBehaviour()
        yield behaviour.handleStatus(
            self.bq, self.status(behaviour, WorkerBuildStatus.OK)
        )
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, behaviour.build.status)
        self.assertIn("no filemap", behaviour.build.failure_reason)

    @defer.inlineCallbacks
    def test_fetch_failure_fails_the_build_cleanly(self):
        worker = FakeWorker({LOG_SHA1: LOG}, missing={"2" * 40})
        behaviour = self.makeBehaviour(worker)
        yield behaviour.handleStatus(
            self.bq,
            self.status(
                behaviour,
                WorkerBuildStatus.OK,
                filemap={"one.txt": "1" * 40, "two.txt": "2" * 40},
            ),
        )
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, behaviour.build.status)
        self.assertIn("builder has no file", behaviour.build.failure_reason)
        self.assertNotIn("\n", behaviour.build.failure_reason)
        self.assertNothingCollected()
        self.assertDequeued(behaviour.build)

    def test_finished_build_is_not_collected(self):
        behaviour = self.makeBehaviour(status=BuildStatus.FULLYBUILT)
        return assert_fails_with(
            behaviour.handleSuccess(
                self.status(behaviour, WorkerBuildStatus.OK, filemap={}),
                None,
            ),
            AssertionError,
        )


class TestBuildFarmJobBehaviourBase(BehaviourTestMixin, TestCaseWithFactory):
    layer = LaunchpadZopelessLayer


class TestBuildFarmJobBehaviourBaseSQLite(
    BehaviourTestMixin, TestCaseWithFactory
):
    layer = SQLiteLaunchpadZopelessLayer
