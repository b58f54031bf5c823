# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `OCIRecipeUpload`, on upload directories made in code."""

__all__ = []

import json
import os

import transaction
from fixtures import TempDir

from lp.archiveuploader.ocirecipeupload import OCIRecipeUpload
from lp.archiveuploader.utils import UploadError
from lp.buildmaster.enums import BuildStatus
from lp.oci.enums import OCIFileKind
from lp.oci.model.ocirecipebuild import OCIFile
from lp.oci.tests.buildfarm import (
    legacy_upload_files,
    librarian_contents,
    make_oci_upload_dir,
    make_test_image,
)
from lp.services.database.interfaces import IStore
from lp.services.librarian.storage import get_librarian_storage
from lp.testing import TestCaseWithFactory
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)
from lpbuildd.tests.archivebuilder import (
    legacy_docker_save,
    make_image,
    make_layer,
)
from ocitypes.descriptor import MediaType
from ocitypes.digest import Digest


def _load(path):
    with open(path) as f:
        return json.load(f)


class UploadTestMixin:
    def setUp(self):
        super().setUp()
        self.work_dir = self.useFixture(TempDir()).path
        self.image = make_test_image()

    def makeBuild(self):
        build = self.factory.makeOCIRecipeBuild()
        build.updateStatus(BuildStatus.UPLOADING)
        transaction.commit()
        return build

    def ociUpload(self):
        return make_oci_upload_dir([self.image], self.work_dir)

    def legacyUpload(self, pulled=()):
        upload = os.path.join(self.work_dir, "legacy")
        # Launchpad's uploads nest the files a level down.
        directory = os.path.join(upload, "oci")
        os.makedirs(directory)
        files = legacy_upload_files(self.image, pulled=pulled)
        for name, data in files.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
        return upload, directory, files

    def blobPaths(self, upload):
        index = _load(os.path.join(upload, "index.json"))
        manifest_digest = Digest.parse(index["manifests"][0]["digest"])
        manifest = json.load(
            open(os.path.join(upload, f"blobs-sha256-{manifest_digest.hex}"))
        )
        return [
            os.path.join(
                upload, "blobs-sha256-" + Digest.parse(d["digest"]).hex
            )
            for d in manifest["layers"]
        ]

    def assertFailedCleanly(self, build, reason, keep=()):
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, build.status)
        self.assertIn(reason, build.failure_reason)
        self.assertTrue(
            IStore(OCIFile).find(OCIFile, OCIFile.build == build.id).is_empty()
        )
        self.assertEqual(set(keep), librarian_contents())

    def test_oci_upload(self):
        build = self.makeBuild()
        OCIRecipeUpload(self.ociUpload()).process(build)
        self.assertEqual(BuildStatus.FULLYBUILT, build.status)
        self.assertTrue(build.verifySuccessfulUpload())
        self.assertEqual(
            [Digest.parse(d) for d in self.image.diff_ids],
            [layer.diff_id for layer in build.layers],
        )
        for layer in build.layers:
            self.assertEqual(
                "application/vnd.oci.image.layer.v1.tar+gzip",
                layer.media_type,
            )
            self.assertEqual(layer.library_file.content.filesize, layer.size)
            self.assertEqual(
                layer.digest.hex, layer.library_file.content.sha256
            )
        kinds = {f.kind for f, _, _ in build.getFiles()}
        self.assertEqual(
            {
                OCIFileKind.INDEX,
                OCIFileKind.MANIFEST,
                OCIFileKind.CONFIG,
                OCIFileKind.LAYER,
                OCIFileKind.OTHER,
            },
            kinds,
        )
        self.assertEqual(1, len(build.image_manifests))

    def test_layers_taken_by_hard_link(self):
        # The upload's files are linked into the librarian, not copied,
        # and stay in the upload directory.
        upload = self.ociUpload()
        storage = get_librarian_storage()
        if os.stat(upload).st_dev != os.stat(storage.root).st_dev:
            self.skipTest("the upload and the librarian are on two devices")
        build = self.makeBuild()
        OCIRecipeUpload(upload).process(build)
        self.assertEqual(BuildStatus.FULLYBUILT, build.status)
        paths = self.blobPaths(upload)
        self.assertEqual(len(build.layers), len(paths))
        for layer, path in zip(build.layers, paths):
            self.assertTrue(
                os.path.samefile(
                    path, storage.getPath(layer.library_file.content.sha256)
                )
            )
        self.assertEqual([], os.listdir(storage.incoming))

    def test_reused_layer_points_at_existing_file(self):
        upload = self.ociUpload()
        path = self.blobPaths(upload)[0]
        with open(path, "rb") as f:
            earlier = self.factory.makeOCIFile(content=f.read())
        transaction.commit()
        os.unlink(path)
        build = self.makeBuild()
        OCIRecipeUpload(upload).process(build)
        self.assertEqual(BuildStatus.FULLYBUILT, build.status)
        self.assertEqual(earlier.library_file, build.layers[0].library_file)

    def test_nondistributable_layer_without_urls(self):
        # gather keeps a foreign layer's descriptor and has no blob for
        # it; its descriptor need not have urls.  Upload processing
        # skipped it but verifySuccessfulUpload reported it missing.
        image = make_image(
            layers=[make_layer(seed=1), make_layer(seed=2)],
            layer_compression=None,
        )
        foreign = {
            "mediaType": MediaType.OCI_LAYER_ND_GZIP,
            "digest": image.layer_digests[0],
            "size": image.layer_sizes[0],
        }
        archive = os.path.join(self.work_dir, "foreign.tar")
        legacy_docker_save(
            image, layer_sources={image.diff_ids[0]: foreign}
        ).write(archive)
        upload = make_oci_upload_dir([], self.work_dir, archive=archive)
        build = self.makeBuild()
        OCIRecipeUpload(upload).process(build)
        self.assertEqual(BuildStatus.FULLYBUILT, build.status)
        self.assertEqual([], build.getUploadProblems())
        self.assertEqual(
            [Digest.parse(image.diff_ids[1])],
            [layer.diff_id for layer in build.layers],
        )

    def test_missing_layer_fails_cleanly(self):
        upload = self.ociUpload()
        os.unlink(self.blobPaths(upload)[-1])
        build = self.makeBuild()
        self.assertRaises(UploadError, OCIRecipeUpload(upload).process, build)
        self.assertFailedCleanly(
            build, "is neither in the upload nor in the librarian"
        )

    def test_failure_keeps_content_others_use(self):
        # The config's content already belongs to another build: the
        # failed upload must not remove it.
        upload = self.ociUpload()
        index = _load(os.path.join(upload, "index.json"))
        manifest = json.load(
            open(
                os.path.join(
                    upload,
                    "blobs-sha256-"
                    + Digest.parse(index["manifests"][0]["digest"]).hex,
                )
            )
        )
        config_digest = Digest.parse(manifest["config"]["digest"])
        with open(
            os.path.join(upload, f"blobs-sha256-{config_digest.hex}"), "rb"
        ) as f:
            self.factory.makeOCIFile(content=f.read())
        transaction.commit()
        os.unlink(self.blobPaths(upload)[-1])
        build = self.makeBuild()
        self.assertRaises(UploadError, OCIRecipeUpload(upload).process, build)
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, build.status)
        self.assertEqual({config_digest.hex}, librarian_contents())

    def test_corrupt_layer_fails_cleanly(self):
        upload = self.ociUpload()
        path = self.blobPaths(upload)[1]
        with open(path, "r+b") as f:
            first = f.read(1)
            f.seek(0)
            f.write(bytes([first[0] ^ 1]))
        build = self.makeBuild()
        self.assertRaises(UploadError, OCIRecipeUpload(upload).process, build)
        self.assertFailedCleanly(build, "Content has sha256")

    def test_corrupt_manifest_fails_cleanly(self):
        upload = self.ociUpload()
        with open(os.path.join(upload, "index.json"), "w") as f:
            f.write("{not json")
        build = self.makeBuild()
        self.assertRaises(UploadError, OCIRecipeUpload(upload).process, build)
        self.assertFailedCleanly(build, "index.json is not valid JSON")

    def test_nothing_to_upload(self):
        build = self.makeBuild()
        self.assertRaises(
            UploadError, OCIRecipeUpload(self.work_dir).process, build
        )
        self.assertFailedCleanly(
            build, "Build did not produce index.json or digests.json"
        )

    def test_legacy_upload(self):
        upload, _, files = self.legacyUpload(pulled=(0,))
        build = self.makeBuild()
        OCIRecipeUpload(upload).process(build)
        self.assertEqual(BuildStatus.FULLYBUILT, build.status)
        self.assertTrue(build.verifySuccessfulUpload())
        digests = json.loads(files["digests.json"])[0]
        for diff_id, details in digests.items():
            oci_file, lfa, _ = build.getLayerFileByDigest(details["digest"])
            self.assertEqual(
                Digest.from_legacy(details["digest"]),
                oci_file.layer_file_digest,
            )
            self.assertEqual("sha256", oci_file.layer_file_digest.algorithm)
            self.assertEqual(Digest.parse(diff_id), oci_file.diff_id)
            self.assertEqual(details["layer_id"] + ".tar.gz", lfa.filename)
        self.assertIsNotNone(build.manifest)
        self.assertIsNotNone(build.digests)

    def test_legacy_layer_reused_by_digest(self):
        upload, directory, files = self.legacyUpload()
        digests = json.loads(files["digests.json"])[0]
        details = digests[self.image.diff_ids[0]]
        name = details["layer_id"] + ".tar.gz"
        earlier = self.factory.makeOCIFile(
            content=files[name], layer_file_digest=details["digest"]
        )
        transaction.commit()
        os.unlink(os.path.join(directory, name))
        build = self.makeBuild()
        OCIRecipeUpload(upload).process(build)
        self.assertEqual(BuildStatus.FULLYBUILT, build.status)
        self.assertEqual(
            earlier.library_file,
            build.getLayerFileByDigest(details["digest"])[1],
        )

    def test_legacy_missing_layer_fails_cleanly(self):
        upload, directory, files = self.legacyUpload()
        details = json.loads(files["digests.json"])[0][self.image.diff_ids[1]]
        os.unlink(os.path.join(directory, details["layer_id"] + ".tar.gz"))
        build = self.makeBuild()
        self.assertRaises(UploadError, OCIRecipeUpload(upload).process, build)
        self.assertFailedCleanly(build, "Missing layer file")


class TestOCIRecipeUpload(UploadTestMixin, TestCaseWithFactory):
    layer = LaunchpadZopelessLayer


class TestOCIRecipeUploadSQLite(UploadTestMixin, TestCaseWithFactory):
    layer = SQLiteLaunchpadZopelessLayer
