# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `OCIRecipeUpload`, on upload directories made in code."""

__all__ = []

import fcntl
import hashlib
import json
import logging
import os
from datetime import datetime, timedelta, timezone

import transaction
from fixtures import MockPatch, TempDir

from lp.archiveuploader.ocirecipeupload import OCIRecipeUpload
from lp.archiveuploader.uploadprocessor import UploadStatusEnum
from lp.archiveuploader.utils import UploadError
from lp.buildmaster.enums import BuildStatus
from lp.oci.enums import OCIFileKind
from lp.oci.model.ocirecipebuild import OCIFile
from lp.oci.tests.buildfarm import (
    legacy_upload_files,
    librarian_contents,
    make_oci_upload_dir,
    make_test_image,
    process_build_upload,
    upload_files_dir,
)
from lp.services.database.interfaces import IStore
from lp.services.librarian.storage import IN_USE_LOCK, get_librarian_storage
from lp.testing import TestCaseWithFactory
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)
from lpbuildd.tests.archivebuilder import make_image, make_layer
from ocitypes.digest import Digest

LONG_AGO = datetime(2020, 1, 1, tzinfo=timezone.utc)


def _load(path):
    with open(path) as f:
        return json.load(f)


class UploadTestMixin:
    def setUp(self):
        super().setUp()
        self.work_dir = self.useFixture(TempDir()).path
        self.upload_root = os.path.join(self.work_dir, "uploads")
        self.image = make_test_image()
        self.leaves = {}
        self.build = self.makeBuild()

    def makeBuild(self, **kwargs):
        build = self.factory.makeOCIRecipeBuild(**kwargs)
        build.updateStatus(BuildStatus.UPLOADING)
        transaction.commit()
        return build

    def leafPath(self, build=None):
        build = build or self.build
        if build.id not in self.leaves:
            self.leaves[build.id] = build.getUploadDirLeaf(build.build_cookie)
        return os.path.join(
            self.upload_root, "incoming", self.leaves[build.id]
        )

    def filesDir(self, build=None):
        """The directory of the build's files, made empty if missing."""
        build = build or self.build
        path = upload_files_dir(build, self.leafPath(build))
        os.makedirs(path, exist_ok=True)
        return path

    def ociUpload(self, build=None, images=None, archive=None):
        """Put an OCI upload of the image(s) where the build farm would."""
        work = self.useFixture(TempDir()).path
        made = make_oci_upload_dir(
            [self.image] if images is None else images, work, archive=archive
        )
        target = self.filesDir(build)
        os.rmdir(target)
        os.rename(made, target)
        return target

    def legacyUpload(self, pulled=()):
        directory = self.filesDir()
        files = legacy_upload_files(self.image, pulled=pulled)
        for name, data in files.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
        return directory, files

    def process(self, build=None, dry_run=False):
        return process_build_upload(self.leafPath(build), dry_run=dry_run)

    def blobPaths(self, upload):
        index = _load(os.path.join(upload, "index.json"))
        manifest_digest = Digest.parse(index["manifests"][0]["digest"])
        manifest = _load(
            os.path.join(upload, f"blobs-sha256-{manifest_digest.hex}")
        )
        return [
            os.path.join(
                upload, "blobs-sha256-" + Digest.parse(d["digest"]).hex
            )
            for d in manifest["layers"]
        ]

    def assertAccepted(self, result, build=None):
        build = build or self.build
        self.assertEqual(
            UploadStatusEnum.ACCEPTED, result, build.failure_reason
        )
        self.assertEqual(BuildStatus.FULLYBUILT, build.status)
        leaf = os.path.basename(self.leafPath(build))
        self.assertTrue(
            os.path.isdir(os.path.join(self.upload_root, "accepted", leaf))
        )

    def assertFailedCleanly(self, result, reason, keep=(), build=None):
        build = build or self.build
        self.assertEqual(UploadStatusEnum.REJECTED, result)
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, build.status)
        self.assertIn(reason, build.failure_reason)
        self.assertIn(reason, build.upload_log.read().decode("utf-8"))
        build.upload_log.close()
        self.assertTrue(
            IStore(OCIFile).find(OCIFile, OCIFile.build == build.id).is_empty()
        )
        self.assertEqual(
            set(keep) | {build.upload_log.content.sha256},
            librarian_contents(),
        )
        leaf = os.path.basename(self.leafPath(build))
        self.assertTrue(
            os.path.isdir(os.path.join(self.upload_root, "failed", leaf))
        )
        self.assertFalse(os.path.exists(self.leafPath(build)))

    def test_oci_upload(self):
        self.ociUpload()
        self.assertAccepted(self.process())
        build = self.build
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
            self.assertFalse(layer.library_file.restricted)
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
        self.assertIsNone(build.upload_log)

    def test_private_build_files_are_restricted(self):
        build = self.makeBuild(private=True)
        self.ociUpload(build)
        self.assertAccepted(self.process(build), build)
        self.assertNotEqual([], list(build.getFiles()))
        for _, lfa, _ in build.getFiles():
            self.assertTrue(lfa.restricted, lfa.filename)

    def test_restricted_layer_is_not_reused(self):
        # A private build's layer is not handed to another build, even
        # with the same content: the upload must bring its own.
        private = self.makeBuild(private=True)
        self.ociUpload(private)
        self.assertAccepted(self.process(private), private)
        upload = self.ociUpload()
        os.unlink(self.blobPaths(upload)[0])
        self.assertFailedCleanly(
            self.process(),
            "Missing layer file: blobs-sha256-",
            keep=librarian_contents(),
        )

    def test_layers_taken_by_hard_link(self):
        # The upload's files are linked into the librarian, not copied.
        upload = self.ociUpload()
        storage = get_librarian_storage()
        if os.stat(upload).st_dev != os.stat(storage.root).st_dev:
            self.skipTest("the upload and the librarian are on two devices")
        paths = self.blobPaths(upload)
        inodes = [os.stat(path).st_ino for path in paths]
        self.assertAccepted(self.process())
        self.assertEqual(len(self.build.layers), len(paths))
        for layer, inode in zip(self.build.layers, inodes):
            self.assertEqual(
                inode,
                os.stat(
                    storage.getPath(layer.library_file.content.sha256)
                ).st_ino,
            )
        self.assertEqual([], os.listdir(storage.incoming))

    def test_reused_layer_points_at_existing_file(self):
        upload = self.ociUpload()
        path = self.blobPaths(upload)[0]
        with open(path, "rb") as f:
            earlier = self.factory.makeOCIFile(content=f.read())
        earlier.markUsed(LONG_AGO)
        transaction.commit()
        os.unlink(path)
        self.assertAccepted(self.process())
        self.assertEqual(
            earlier.library_file, self.build.layers[0].library_file
        )
        # The build farm marked it used when it did not fetch it; the
        # upload processor only reads and inserts OCIFile rows.
        self.assertEqual(LONG_AGO, earlier.date_last_used)

    def test_each_blob_stored_once_under_its_digest(self):
        # Two images sharing their base layers: every blob is one OCIFile,
        # recorded under "sha256:<hex>" and named as the builder filed
        # it; index.json and oci-layout are stored too.
        other = make_image(
            layers=[make_layer(seed=1, size=32 * 1024), make_layer(seed=9)],
            architecture="arm64",
        )
        upload = self.ociUpload(images=[self.image, other])
        blobs = sorted(n for n in os.listdir(upload) if n.startswith("blobs-"))
        self.assertAccepted(self.process())
        files = list(self.build.getFiles())
        self.assertEqual(
            sorted(blobs + ["index.json", "oci-layout"]),
            sorted(lfa.filename for _, lfa, _ in files),
        )
        for oci_file, lfa, content in files:
            if lfa.filename.startswith("blobs-"):
                self.assertEqual(
                    (f"sha256:{content.sha256}", lfa.filename),
                    (
                        str(oci_file.layer_file_digest),
                        f"blobs-sha256-{content.sha256}",
                    ),
                )
            else:
                self.assertIsNone(oci_file.layer_file_digest)
        self.assertEqual(2, len(self.build.image_manifests))

    def test_layer_reused_when_not_fetched(self):
        # A layer the build farm did not fetch is linked from the file
        # getReusableLayerFile gives, whatever digest that file was
        # recorded under.
        upload = self.ociUpload()
        path = self.blobPaths(upload)[0]
        with open(path, "rb") as f:
            earlier = self.factory.makeOCIFile(
                content=f.read(),
                layer_file_digest=hashlib.sha256(b"legacy").hexdigest(),
            )
        transaction.commit()
        os.unlink(path)
        self.assertAccepted(self.process())
        oci_file, lfa, _ = self.build.getLayerFileByDigest(
            "sha256:" + path.rsplit("-", 1)[1]
        )
        self.assertEqual(earlier.library_file, lfa)
        self.assertEqual(OCIFileKind.LAYER, oci_file.kind)

    def test_expiring_layer_is_not_reused(self):
        upload = self.ociUpload()
        path = self.blobPaths(upload)[0]
        with open(path, "rb") as f:
            self.factory.makeOCIFile(
                library_file=self.factory.makeLibraryFileAlias(
                    content=f.read(),
                    expires=datetime.now(timezone.utc) + timedelta(hours=1),
                )
            )
        transaction.commit()
        os.unlink(path)
        self.assertFailedCleanly(
            self.process(),
            f"Missing layer file: {os.path.basename(path)}.",
            keep=librarian_contents(),
        )

    def test_missing_layer_fails_cleanly(self):
        upload = self.ociUpload()
        os.unlink(self.blobPaths(upload)[-1])
        self.assertFailedCleanly(
            self.process(), "Missing layer file: blobs-sha256-"
        )

    def test_failure_keeps_content_others_use(self):
        # The config's content already belongs to another build: the
        # failed upload must not remove it.
        upload = self.ociUpload()
        index = _load(os.path.join(upload, "index.json"))
        manifest = _load(
            os.path.join(
                upload,
                "blobs-sha256-"
                + Digest.parse(index["manifests"][0]["digest"]).hex,
            )
        )
        config_digest = Digest.parse(manifest["config"]["digest"])
        with open(
            os.path.join(upload, f"blobs-sha256-{config_digest.hex}"), "rb"
        ) as f:
            self.factory.makeOCIFile(content=f.read())
        transaction.commit()
        os.unlink(self.blobPaths(upload)[-1])
        self.assertFailedCleanly(
            self.process(),
            "Missing layer file: blobs-sha256-",
            keep={config_digest.hex},
        )

    def test_failure_keeps_content_an_uncommitted_upload_may_use(self):
        # Another process is between storing content and committing
        # (it holds the librarian's shared in-use lock): the failed
        # upload's content, which that process may have stored too,
        # is left for lp-oci verify --repair.
        upload = self.ociUpload()
        paths = self.blobPaths(upload)
        os.unlink(paths[-1])
        storage = get_librarian_storage()
        fd = os.open(
            os.path.join(storage.root, IN_USE_LOCK), os.O_RDWR | os.O_CREAT
        )
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_SH)
        self.assertEqual(UploadStatusEnum.REJECTED, self.process())
        left = librarian_contents()
        for path in paths[:-1]:
            self.assertIn(path.rsplit("-", 1)[1], left)
        fcntl.flock(fd, fcntl.LOCK_UN)

    def test_corrupt_layer_fails_cleanly(self):
        upload = self.ociUpload()
        path = self.blobPaths(upload)[1]
        with open(path, "r+b") as f:
            first = f.read(1)
            f.seek(0)
            f.write(bytes([first[0] ^ 1]))
        self.assertFailedCleanly(
            self.process(),
            f"{os.path.basename(path)} does not match its descriptor.",
        )

    def test_corrupt_index_fails_cleanly(self):
        upload = self.ociUpload()
        with open(os.path.join(upload, "index.json"), "w") as f:
            f.write("{not json")
        self.assertFailedCleanly(
            self.process(), "index.json is not valid JSON"
        )

    def test_nothing_to_upload(self):
        self.filesDir()
        self.assertFailedCleanly(
            self.process(), "Build did not produce index.json or digests.json"
        )

    def test_files_outside_the_distribution_directory_are_ignored(self):
        # Launchpad's layout: the files sit in <archive id>/<distribution>.
        upload = self.ociUpload()
        for name in os.listdir(upload):
            os.rename(
                os.path.join(upload, name),
                os.path.join(self.leafPath(), name),
            )
        self.assertFailedCleanly(
            self.process(), "Build did not produce index.json or digests.json"
        )

    def test_legacy_upload(self):
        _, files = self.legacyUpload(pulled=(0,))
        self.assertAccepted(self.process())
        build = self.build
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
        directory, files = self.legacyUpload()
        digests = json.loads(files["digests.json"])[0]
        details = digests[self.image.diff_ids[0]]
        name = details["layer_id"] + ".tar.gz"
        earlier = self.factory.makeOCIFile(
            content=files[name], layer_file_digest=details["digest"]
        )
        transaction.commit()
        os.unlink(os.path.join(directory, name))
        self.assertAccepted(self.process())
        self.assertEqual(
            earlier.library_file,
            self.build.getLayerFileByDigest(details["digest"])[1],
        )

    def test_legacy_pulled_layer_is_not_reused_by_registry_digest(self):
        # A pulled layer is recorded under the registry's digest, which
        # is not the digest of the file Launchpad holds: that file cannot
        # stand for the layer in another build.
        directory, files = self.legacyUpload(pulled=(0,))
        details = json.loads(files["digests.json"])[0][self.image.diff_ids[0]]
        name = details["layer_id"] + ".tar.gz"
        self.factory.makeOCIFile(
            content=files[name], layer_file_digest=details["digest"]
        )
        transaction.commit()
        os.unlink(os.path.join(directory, name))
        self.assertFailedCleanly(
            self.process(),
            "Missing layer file",
            keep={hashlib.sha256(files[name]).hexdigest()},
        )

    def test_legacy_missing_layer_fails_cleanly(self):
        directory, files = self.legacyUpload()
        details = json.loads(files["digests.json"])[0][self.image.diff_ids[1]]
        os.unlink(os.path.join(directory, details["layer_id"] + ".tar.gz"))
        self.assertFailedCleanly(self.process(), "Missing layer file")

    def test_process_leaves_the_transaction_to_its_caller(self):
        # OCIRecipeUpload.process neither commits nor aborts: aborting
        # afterwards leaves no trace in the database.
        self.ociUpload()
        upload = OCIRecipeUpload(self.leafPath(), logging.getLogger())
        upload.process(self.build)
        self.assertEqual(BuildStatus.FULLYBUILT, self.build.status)
        transaction.abort()
        self.assertEqual(BuildStatus.UPLOADING, self.build.status)
        self.assertEqual([], list(self.build.getFiles()))
        upload.removeUnreferencedContent()
        self.assertEqual(set(), librarian_contents())

    def test_stored_files_synced_together_at_commit(self):
        # Nothing is fsynced file by file while the upload is processed;
        # the commit syncs every stored file once, before the rows.
        upload = self.ociUpload()
        names = [n for n in os.listdir(upload)]
        synced = []
        real_fsync = os.fsync

        def recording_fsync(fd):
            synced.append(os.fstat(fd).st_ino)
            return real_fsync(fd)

        self.useFixture(MockPatch("os.fsync", side_effect=recording_fsync))
        OCIRecipeUpload(self.leafPath(), logging.getLogger()).process(
            self.build
        )
        self.assertEqual([], synced)
        transaction.commit()
        stored = {os.stat(os.path.join(upload, name)).st_ino for name in names}
        self.assertEqual(len(names), len(stored))
        self.assertEqual(stored, set(synced) & stored)
        self.assertEqual(len(names), len([i for i in synced if i in stored]))

    def test_upload_of_too_many_images_is_refused(self):
        # Beyond MAX_UPLOAD_IMAGES, the upload is refused in one line
        # before any manifest is read.
        self.useFixture(
            MockPatch("lp.oci.model.ociupload.MAX_UPLOAD_IMAGES", 2)
        )
        upload = self.ociUpload()
        with open(os.path.join(upload, "index.json")) as f:
            index = json.load(f)
        (entry,) = index["manifests"]
        for n in range(2):
            index["manifests"].append(dict(entry, digest=f"sha256:{n:064x}"))
        with open(os.path.join(upload, "index.json"), "w") as f:
            json.dump(index, f)
        self.assertFailedCleanly(
            self.process(),
            "index.json lists 3 images; an upload may list at most 2",
        )
        self.assertNotIn("\n", self.build.failure_reason)

    def test_upload_of_as_many_images_as_the_bound_is_accepted(self):
        self.useFixture(
            MockPatch("lp.oci.model.ociupload.MAX_UPLOAD_IMAGES", 2)
        )
        other = make_image(layers=[make_layer(seed=9)], architecture="arm64")
        self.ociUpload(images=[self.image, other])
        self.assertAccepted(self.process())
        self.assertEqual(2, len(self.build.image_manifests))

    def test_legacy_upload_of_too_many_images_is_refused(self):
        self.useFixture(
            MockPatch("lp.oci.model.ociupload.MAX_UPLOAD_IMAGES", 1)
        )
        directory = self.filesDir()
        other = make_image(layers=[make_layer(seed=9)], architecture="arm64")
        files = legacy_upload_files(self.image, more_images=[other])
        for name, data in files.items():
            with open(os.path.join(directory, name), "wb") as f:
                f.write(data)
        self.assertFailedCleanly(
            self.process(),
            "manifest.json lists 2 images; an upload may list at most 1",
        )

    def test_upload_error_is_one_line(self):
        upload = self.ociUpload()
        with open(os.path.join(upload, "index.json"), "w") as f:
            json.dump({"manifests": "no\nlist"}, f)
        self.assertRaises(
            UploadError,
            OCIRecipeUpload(self.leafPath(), logging.getLogger()).process,
            self.build,
        )
        self.assertFailedCleanly(self.process(), "index.json lists no images")
        self.assertNotIn("\n", self.build.failure_reason)


class TestOCIRecipeUpload(UploadTestMixin, TestCaseWithFactory):
    layer = LaunchpadZopelessLayer


class TestOCIRecipeUploadSQLite(UploadTestMixin, TestCaseWithFactory):
    layer = SQLiteLaunchpadZopelessLayer
