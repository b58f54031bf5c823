# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Structured fuzzing of the Launchpad-side reader of an upload.

Valid uploads (OCI uploads gathered from archives of several formats,
and legacy uploads) are damaged by `mutate_upload`.  The reader
(`read_upload`, as the build farm and the upload processor read) must
succeed or raise `OCIUploadError`; the upload processor, on PostgreSQL
and on SQLite, must accept the upload (FULLYBUILT, and
`getUploadProblems`, the push plan and the archive export agree it is
sound) or reject it (FAILEDTOUPLOAD with a one-line reason, no files
recorded), never raise.

The example budget is small and derandomized in CI; ``make fuzz``
scales it up (`lpbuildd.tests.fuzzing.fuzz_settings`).
"""

__all__ = []

import os
import tempfile

import transaction
from fixtures import TempDir
from hypothesis import given
from hypothesis import strategies as st
from testtools import TestCase

from lp.archiveuploader.uploadprocessor import UploadStatusEnum
from lp.buildmaster.enums import BuildStatus
from lp.oci.interfaces.ociarchive import OCIArchiveFormat
from lp.oci.interfaces.ociupload import OCIUploadError
from lp.oci.model.ociarchive import OCIArchiveSet
from lp.oci.model.ocirecipebuild import OCIFile
from lp.oci.model.ociregistryclient import make_push_plan
from lp.oci.tests.buildfarm import process_build_upload, upload_files_dir
from lp.oci.tests.uploadfuzzing import (
    mutate_upload,
    read_upload,
    write_upload,
)
from lp.services.database.interfaces import IStore
from lp.testing import TestCaseWithFactory
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)
from lpbuildd.tests.fuzzing import fuzz_settings
from ocitypes.errors import OCIContentError


class TestFuzzReadUpload(TestCase):
    @fuzz_settings(200)
    @given(st.randoms(use_true_random=False))
    def test_mutated_uploads(self, rng):
        files = mutate_upload(rng)
        with tempfile.TemporaryDirectory() as directory:
            write_upload(files, directory)
            try:
                images = read_upload(directory)
            except OCIUploadError as e:
                self.assertNotIn("\n", str(e))
            else:
                self.assertNotEqual([], list(images))


class FuzzUploadProcessingMixin:
    def setUp(self):
        super().setUp()
        self.upload_root = os.path.join(
            self.useFixture(TempDir()).path, "uploads"
        )

    def processUpload(self, files):
        build = self.factory.makeOCIRecipeBuild()
        build.updateStatus(BuildStatus.UPLOADING)
        transaction.commit()
        leaf = os.path.join(
            self.upload_root,
            "incoming",
            build.getUploadDirLeaf(build.build_cookie),
        )
        directory = upload_files_dir(build, leaf)
        os.makedirs(directory)
        write_upload(files, directory)
        return build, process_build_upload(leaf)

    def assertSoundOrRejected(self, build, result):
        if result == UploadStatusEnum.ACCEPTED:
            self.assertEqual(BuildStatus.FULLYBUILT, build.status)
            self.assertEqual([], build.getUploadProblems())
            try:
                make_push_plan(build)
            except OCIUploadError as e:
                self.assertNotIn("\n", str(e))
            for format in (OCIArchiveFormat.OCI, OCIArchiveFormat.DOCKER):
                try:
                    archive = OCIArchiveSet().getArchive(build, format)
                except OCIContentError as e:
                    self.assertNotIn("\n", str(e))
                else:
                    size = sum(len(b) for b in archive.iterBytes())
                    self.assertEqual(archive.size, size)
        else:
            self.assertEqual(UploadStatusEnum.REJECTED, result)
            self.assertEqual(BuildStatus.FAILEDTOUPLOAD, build.status)
            self.assertNotIn("\n", build.failure_reason)
            self.assertTrue(
                IStore(OCIFile)
                .find(OCIFile, OCIFile.build == build.id)
                .is_empty()
            )

    @fuzz_settings(25)
    @given(st.randoms(use_true_random=False))
    def test_mutated_uploads(self, rng):
        build, result = self.processUpload(mutate_upload(rng))
        self.assertSoundOrRejected(build, result)


class TestFuzzUploadProcessing(FuzzUploadProcessingMixin, TestCaseWithFactory):
    layer = LaunchpadZopelessLayer


class TestFuzzUploadProcessingSQLite(
    FuzzUploadProcessingMixin, TestCaseWithFactory
):
    layer = SQLiteLaunchpadZopelessLayer
