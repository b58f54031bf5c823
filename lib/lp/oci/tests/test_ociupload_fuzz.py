# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Structured fuzzing of the Launchpad-side reader of an upload.

Valid uploads (OCI uploads the builder files from archives of several
formats, and legacy uploads) are damaged by `mutate_upload`.  The reader
(`read_upload`, as the build farm and the upload processor read) must
succeed or raise `OCILayoutError` (an OCI upload) or `OCIUploadError` (a
legacy upload); the upload processor, on PostgreSQL
and on SQLite, must accept the upload (FULLYBUILT, and
`getUploadProblems`, the push plan and the archive export agree it is
sound) or reject it (FAILEDTOUPLOAD with a one-line reason, no files
recorded), never raise.

The example budget is small and derandomized in CI; ``make fuzz``
scales it up (`lpbuildd.tests.fuzzing.fuzz_settings`).
"""

__all__ = []

import json
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
from lp.oci.model.ocilayout import OCILayoutError
from lp.oci.model.ocirecipebuild import OCIFile
from lp.oci.model.ociregistryclient import make_push_plan
from lp.oci.tests.buildfarm import (
    legacy_upload_files,
    make_test_image,
    process_build_upload,
    upload_files_dir,
)
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


class TestFuzzReadUpload(TestCase):
    @fuzz_settings(200)
    @given(st.randoms(use_true_random=False))
    def test_mutated_uploads(self, rng):
        files = mutate_upload(rng)
        with tempfile.TemporaryDirectory() as directory:
            write_upload(files, directory)
            try:
                images = read_upload(directory)
            except (OCILayoutError, OCIUploadError) as e:
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
            # An accepted upload can be verified, pushed and exported.
            self.assertEqual([], build.getUploadProblems())
            self.assertNotEqual([], make_push_plan(build).manifests)
            for format in (OCIArchiveFormat.OCI, OCIArchiveFormat.DOCKER):
                archive = OCIArchiveSet().getArchive(build, format)
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

    # What the fuzzer found, as regression tests.

    def test_legacy_config_not_json_is_rejected(self):
        # It was accepted, and pushing the build then failed with a
        # JSONDecodeError.
        files = legacy_upload_files(make_test_image())
        config_name = json.loads(files["manifest.json"])[0]["Config"]
        files[config_name] = b'{"os": "linux"}}'
        build, result = self.processUpload(files)
        self.assertSoundOrRejected(build, result)
        self.assertEqual(UploadStatusEnum.REJECTED, result)
        self.assertTrue(
            build.failure_reason.startswith(
                f"{config_name} is not valid JSON"
            ),
            build.failure_reason,
        )

    def test_legacy_config_not_matching_digests_json_is_rejected(self):
        # It was accepted, and could then not be exported.
        image = make_test_image()
        files = legacy_upload_files(image)
        config_name = json.loads(files["manifest.json"])[0]["Config"]
        config = json.loads(files[config_name])
        config["rootfs"]["diff_ids"][1] = "sha256:" + "0" * 64
        files[config_name] = json.dumps(config).encode()
        build, result = self.processUpload(files)
        self.assertSoundOrRejected(build, result)
        self.assertEqual(UploadStatusEnum.REJECTED, result)
        self.assertEqual(
            f"digests.json has no layer for diff_id sha256:{'0' * 64} of "
            f"{config_name}",
            build.failure_reason,
        )

    def test_legacy_layer_reused_under_another_name_is_pushable(self):
        # A layer missing from a legacy upload reuses the librarian file
        # of another build, named as that build named it; the push plan
        # looked the layer up by its name in this build and raised
        # NotFoundError.
        image = make_test_image()
        build, result = self.processUpload(legacy_upload_files(image))
        self.assertSoundOrRejected(build, result)
        self.assertEqual(UploadStatusEnum.ACCEPTED, result)
        files = legacy_upload_files(image)
        digests = json.loads(files["digests.json"])
        layer = digests[0][image.diff_ids[0]]
        del files[layer["layer_id"] + ".tar.gz"]
        # manifest.json names the layer as digests.json does.
        manifest = json.loads(files["manifest.json"])
        manifest[0]["Layers"][0] = "0" * 64 + "/layer.tar"
        layer["layer_id"] = "0" * 64
        files["digests.json"] = json.dumps(digests).encode()
        files["manifest.json"] = json.dumps(manifest).encode()
        build, result = self.processUpload(files)
        self.assertSoundOrRejected(build, result)
        self.assertEqual(UploadStatusEnum.ACCEPTED, result)


class TestFuzzUploadProcessing(FuzzUploadProcessingMixin, TestCaseWithFactory):
    layer = LaunchpadZopelessLayer


class TestFuzzUploadProcessingSQLite(
    FuzzUploadProcessingMixin, TestCaseWithFactory
):
    layer = SQLiteLaunchpadZopelessLayer
