# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `UploadProcessor`, on every backend."""

__all__ = []

import hashlib
import os

import transaction
from fixtures import MockPatchObject, TempDir
from zope.component import getUtility

from lp.archiveuploader.ocirecipeupload import OCIRecipeUpload
from lp.archiveuploader.uploadprocessor import (
    UploadProcessor,
    UploadStatusEnum,
    parse_build_upload_leaf_name,
)
from lp.buildmaster.enums import BuildStatus
from lp.buildmaster.interactor import DownloadResult
from lp.buildmaster.verifiedfiles import write_verified_files
from lp.oci.interfaces.ociarchive import IOCIArchiveSet, OCIArchiveFormat
from lp.oci.interfaces.ocirecipebuild import (
    OCIRecipeBuildRegistryUploadStatus,
)
from lp.oci.model.ocirecipebuild import OCIArchiveChecksum
from lp.oci.model.ocirecipebuildjob import (
    builds_missing_archive_checksums,
    run_archive_checksum_jobs,
)
from lp.oci.tests.buildfarm import (
    librarian_contents,
    make_oci_upload_dir,
    make_test_image,
    upload_files_dir,
)
from lp.services.database.interfaces import IStore
from lp.services.librarian.storage import LibrarianStorage
from lp.testing import TestCase, TestCaseWithFactory
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)


class TestParseBuildUploadLeafName(TestCase):
    def test_parses(self):
        self.assertEqual(
            ("OCIRECIPEBUILD", 42),
            parse_build_upload_leaf_name("20260101-120000-OCIRECIPEBUILD-42"),
        )

    def test_refuses(self):
        for name in ("junk", "20260101-120000-OCIRECIPEBUILD-x", "a-b"):
            self.assertRaises(ValueError, parse_build_upload_leaf_name, name)


class UploadProcessorMixin:
    def setUp(self):
        super().setUp()
        self.root = self.useFixture(TempDir()).path
        self.fsroot = os.path.join(self.root, "incoming")

    def makeUpload(self, private=False, status=BuildStatus.UPLOADING):
        """An UPLOADING build and its OCI upload; return (build, leaf)."""
        build = self.factory.makeOCIRecipeBuild(private=private)
        build.updateStatus(status)
        transaction.commit()
        leaf = build.getUploadDirLeaf(build.build_cookie)
        target = upload_files_dir(build, os.path.join(self.fsroot, leaf))
        os.makedirs(os.path.dirname(target))
        work = self.useFixture(TempDir()).path
        os.rename(make_oci_upload_dir([make_test_image()], work), target)
        return build, leaf

    def breakUpload(self, build, leaf):
        directory = upload_files_dir(build, os.path.join(self.fsroot, leaf))
        with open(os.path.join(directory, "index.json"), "w") as f:
            f.write("{}")

    def test_accepted(self):
        build, leaf = self.makeUpload()
        result = UploadProcessor(self.root).processBuildUpload(
            self.fsroot, leaf
        )
        self.assertEqual(UploadStatusEnum.ACCEPTED, result)
        transaction.abort()
        self.assertEqual(BuildStatus.FULLYBUILT, build.status)
        self.assertTrue(build.verifySuccessfulUpload())
        self.assertEqual([], os.listdir(self.fsroot))
        # The archives' checksums are not computed at upload time (that
        # would read every blob twice more); run-jobs stores them.
        self.assertTrue(
            IStore(OCIArchiveChecksum)
            .find(OCIArchiveChecksum, build_id=build.id)
            .is_empty()
        )
        self.assertEqual([build], builds_missing_archive_checksums())
        done = run_archive_checksum_jobs()
        self.assertEqual(
            [(build, "oci"), (build, "docker")],
            [(b, f) for b, f, _ in done],
        )
        transaction.abort()
        stored = {
            row.format: (row.size, row.sha256)
            for row in IStore(OCIArchiveChecksum).find(
                OCIArchiveChecksum, build_id=build.id
            )
        }
        self.assertEqual({"oci", "docker"}, set(stored))
        for format in (OCIArchiveFormat.OCI, OCIArchiveFormat.DOCKER):
            content = b"".join(
                getUtility(IOCIArchiveSet)
                .getArchive(build, format)
                .iterBytes()
            )
            self.assertEqual(
                (len(content), hashlib.sha256(content).hexdigest()),
                stored[format.name.lower()],
            )
        # Once stored, nothing is left to do.
        self.assertEqual([], builds_missing_archive_checksums())
        self.assertEqual([], run_archive_checksum_jobs())
        self.assertEqual(
            [leaf], os.listdir(os.path.join(self.root, "accepted"))
        )

    def writeVerifiedFiles(self, build, leaf):
        """Record every file of the upload as the downloads would."""
        directory = upload_files_dir(build, os.path.join(self.fsroot, leaf))
        results = []
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                data = f.read()
            results.append(
                DownloadResult(
                    path,
                    hashlib.sha1(data).hexdigest(),
                    hashlib.sha256(data).hexdigest(),
                    len(data),
                )
            )
        write_verified_files(
            os.path.join(self.fsroot, leaf), directory, results
        )
        return directory

    def test_verified_files_are_not_read_again(self):
        # Files the build farm's downloads verified are stored without
        # being read: they have no md5.  Others (none here) would be.
        build, leaf = self.makeUpload()
        self.writeVerifiedFiles(build, leaf)
        with MockPatchObject(
            LibrarianStorage, "_copy", side_effect=AssertionError("read")
        ):
            result = UploadProcessor(self.root).processBuildUpload(
                self.fsroot, leaf
            )
        self.assertEqual(UploadStatusEnum.ACCEPTED, result)
        transaction.abort()
        self.assertTrue(build.verifySuccessfulUpload())
        contents = [lfa.content for _, lfa, _ in build.getFiles()]
        self.assertNotEqual([], contents)
        self.assertEqual({None}, {content.md5 for content in contents})

    def test_verified_file_changed_since_is_refused(self):
        # A layer rewritten after its download was verified (same size,
        # other bytes and mtime) is hashed again and refused, not stored
        # under the digest on record.
        build, leaf = self.makeUpload()
        directory = self.writeVerifiedFiles(build, leaf)
        layer = max(
            (os.path.join(directory, name) for name in os.listdir(directory)),
            key=os.path.getsize,
        )
        before = os.stat(layer).st_mtime_ns
        with open(layer, "r+b") as f:
            f.seek(-1, os.SEEK_END)
            last = f.read(1)
            f.seek(-1, os.SEEK_END)
            f.write(bytes([last[0] ^ 1]))
        os.utime(layer, ns=(before + 1, before + 1))
        result = UploadProcessor(self.root).processBuildUpload(
            self.fsroot, leaf
        )
        self.assertEqual(UploadStatusEnum.REJECTED, result)
        transaction.abort()
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, build.status)
        self.assertIn("sha256", build.failure_reason)

    def test_accepted_schedules_registry_upload(self):
        # A recipe with push rules gets its FULLYBUILT build pushed.
        build, leaf = self.makeUpload()
        self.factory.makeOCIPushRule(recipe=build.recipe)
        transaction.commit()
        UploadProcessor(self.root).processBuildUpload(self.fsroot, leaf)
        transaction.abort()
        self.assertEqual(
            OCIRecipeBuildRegistryUploadStatus.PENDING,
            build.registry_upload_status,
        )
        self.assertEqual(1, len(build.registry_upload_jobs))

    def test_accepted_without_push_rules_schedules_nothing(self):
        build, leaf = self.makeUpload()
        UploadProcessor(self.root).processBuildUpload(self.fsroot, leaf)
        transaction.abort()
        self.assertEqual([], build.registry_upload_jobs)

    def test_rejected_schedules_nothing(self):
        build, leaf = self.makeUpload()
        self.factory.makeOCIPushRule(recipe=build.recipe)
        transaction.commit()
        self.breakUpload(build, leaf)
        UploadProcessor(self.root).processBuildUpload(self.fsroot, leaf)
        transaction.abort()
        self.assertEqual([], build.registry_upload_jobs)

    def test_rejected(self):
        build, leaf = self.makeUpload()
        self.breakUpload(build, leaf)
        result = UploadProcessor(self.root).processBuildUpload(
            self.fsroot, leaf
        )
        self.assertEqual(UploadStatusEnum.REJECTED, result)
        transaction.abort()
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, build.status)
        self.assertEqual("index.json lists no images", build.failure_reason)
        log = build.upload_log
        self.assertEqual(f"upload_{build.id}_log.txt", log.filename)
        self.assertIn("ERROR index.json lists no images", log.read().decode())
        log.close()
        self.assertFalse(log.restricted)
        self.assertEqual([leaf], os.listdir(os.path.join(self.root, "failed")))

    def test_private_build_upload_log_is_restricted(self):
        build, leaf = self.makeUpload(private=True)
        self.breakUpload(build, leaf)
        UploadProcessor(self.root).processBuildUpload(self.fsroot, leaf)
        self.assertTrue(build.upload_log.restricted)

    def test_dry_run_accepted(self):
        build, leaf = self.makeUpload()
        result = UploadProcessor(self.root, dry_run=True).processBuildUpload(
            self.fsroot, leaf
        )
        self.assertEqual(UploadStatusEnum.ACCEPTED, result)
        self.assertEqual(BuildStatus.UPLOADING, build.status)
        self.assertEqual([], list(build.getFiles()))
        self.assertEqual([leaf], os.listdir(self.fsroot))
        self.assertEqual(set(), librarian_contents())

    def test_dry_run_rejected(self):
        build, leaf = self.makeUpload()
        os.unlink(
            os.path.join(
                upload_files_dir(build, os.path.join(self.fsroot, leaf)),
                "oci-layout",
            )
        )
        result = UploadProcessor(self.root, dry_run=True).processBuildUpload(
            self.fsroot, leaf
        )
        self.assertEqual(UploadStatusEnum.REJECTED, result)
        self.assertEqual(BuildStatus.UPLOADING, build.status)
        self.assertIsNone(build.upload_log)
        self.assertEqual([leaf], os.listdir(self.fsroot))
        self.assertEqual(set(), librarian_contents())

    def test_bugs_propagate(self):
        # Only the upload's own errors reject it; anything else is a bug:
        # it propagates, nothing is committed and the upload stays.
        build, leaf = self.makeUpload()
        real_process = OCIRecipeUpload.process

        def process(upload, build):
            real_process(upload, build)
            raise ZeroDivisionError("bug")

        self.useFixture(MockPatchObject(OCIRecipeUpload, "process", process))
        self.assertRaises(
            ZeroDivisionError,
            UploadProcessor(self.root).processBuildUpload,
            self.fsroot,
            leaf,
        )
        self.assertEqual(BuildStatus.UPLOADING, build.status)
        self.assertEqual([], list(build.getFiles()))
        self.assertEqual(set(), librarian_contents())
        self.assertEqual([leaf], os.listdir(self.fsroot))

    def test_build_not_uploading_is_left_alone(self):
        build, leaf = self.makeUpload(status=BuildStatus.BUILDING)
        self.assertIsNone(
            UploadProcessor(self.root).processBuildUpload(self.fsroot, leaf)
        )
        self.assertEqual(BuildStatus.BUILDING, build.status)
        self.assertEqual([leaf], os.listdir(self.fsroot))

    def test_unknown_build_is_left_alone(self):
        os.makedirs(os.path.join(self.fsroot, "20260101-000000-SNAPBUILD-1"))
        os.makedirs(os.path.join(self.fsroot, "junk"))
        os.makedirs(
            os.path.join(self.fsroot, "20260101-000000-OCIRECIPEBUILD-99")
        )
        processor = UploadProcessor(self.root)
        for leaf in os.listdir(self.fsroot):
            self.assertIsNone(processor.processBuildUpload(self.fsroot, leaf))
        self.assertEqual(3, len(os.listdir(self.fsroot)))

    def test_processUploadQueue(self):
        first, first_leaf = self.makeUpload()
        second, second_leaf = self.makeUpload()
        self.breakUpload(second, second_leaf)
        UploadProcessor(self.root).processUploadQueue()
        self.assertEqual(BuildStatus.FULLYBUILT, first.status)
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, second.status)
        self.assertEqual([], os.listdir(self.fsroot))


class TestUploadProcessor(UploadProcessorMixin, TestCaseWithFactory):
    layer = LaunchpadZopelessLayer


class TestUploadProcessorSQLite(UploadProcessorMixin, TestCaseWithFactory):
    layer = SQLiteLaunchpadZopelessLayer
