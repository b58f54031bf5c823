# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `OCIRecipeBuildBehaviour`, against a real builder."""

__all__ = []

import hashlib
import json
import os
from datetime import datetime, timedelta, timezone

import transaction
from fixtures import MockPatch
from twisted.internet import defer
from zope.component import getAdapter

from lp.buildmaster.enums import BuildStatus
from lp.buildmaster.interactor import DownloadResult
from lp.buildmaster.interfaces.buildfarmjobbehaviour import (
    IBuildFarmJobBehaviour,
)
from lp.buildmaster.verifiedfiles import (
    VERIFIED_FILES_NAME,
    read_verified_files,
)
from lp.oci.model.ocilayout import OCIDescriptor, OCILayoutError
from lp.oci.model.ocirecipebuildbehaviour import OCIRecipeBuildBehaviour
from lp.oci.tests.buildfarm import (
    BuildFarmTestMixin,
    OCIBuildFarmLayer,
    SQLiteOCIBuildFarmLayer,
    file_legacy_upload,
    file_oci_upload,
    make_test_image,
    write_archive,
)
from lp.testing import TestCaseWithFactory
from lpbuildd.tests.archivebuilder import make_image, make_layer

LONG_AGO = datetime(2020, 1, 1, tzinfo=timezone.utc)


class BehaviourTestMixin(BuildFarmTestMixin):
    def setUp(self):
        super().setUp()
        self.setUpBuildFarm()

    def gather(self, image, build=None, **kwargs):
        build = build or self.factory.makeOCIRecipeBuild()
        behaviour = self.makeBehaviour(build, **kwargs)
        archive = write_archive(self.work_dir, [image])
        result = file_oci_upload(
            self.builder, behaviour.build_cookie, archive, self.work_dir
        )
        return behaviour, result

    def blobNames(self, result):
        (image,) = result.images
        return [
            f"blobs-sha256-{layer.descriptor.digest.hex}"
            for layer in image.layers
        ]

    def filed(self, name):
        """The bytes the builder filed under ``name``."""
        path = self.builder.cachePath(self.builder.waitingfiles[name])
        with open(path, "rb") as f:
            return f.read()

    def assertReused(self, behaviour, result, upload_path):
        """The bottom layer was not fetched, but reused."""
        layer = result.images[0].layers[0]
        self.assertNotIn(self.blobNames(result)[0], os.listdir(upload_path))
        self.assertEqual(
            ("reused", layer.descriptor.size),
            behaviour.transfers[layer.descriptor.digest],
        )

    def test_adapter(self):
        build = self.factory.makeOCIRecipeBuild()
        behaviour = getAdapter(build, IBuildFarmJobBehaviour)
        self.assertIsInstance(behaviour, OCIRecipeBuildBehaviour)
        self.assertIs(build, behaviour.build)

    def test_extraBuildArgs(self):
        build = self.factory.makeOCIRecipeBuild(name="app")
        args = OCIRecipeBuildBehaviour(build).extraBuildArgs()
        self.assertEqual(
            {
                "arch_tag": "amd64",
                "name": "app",
                "build_file": "Dockerfile",
                "upload_format": "oci",
            },
            args,
        )

    @defer.inlineCallbacks
    def test_oci_upload_fetches_everything_once(self):
        behaviour, result = self.gather(make_test_image())
        upload_path = yield self.collect(behaviour)
        self.assertEqual("oci", behaviour.upload_format)
        self.assertEqual(BuildStatus.UPLOADING, behaviour.build.status)
        self.assertEqual(
            sorted(self.builder_waiting_names),
            sorted(os.listdir(upload_path)),
        )
        sizes = [layer.descriptor.size for layer in result.images[0].layers]
        self.assertEqual(sum(sizes), behaviour.bytes_fetched)
        (image,) = behaviour.images
        self.assertEqual(
            str(result.images[0].config_digest), image.config.digest
        )
        self.assertEqual(
            {"architecture": "amd64", "os": "linux"},
            image.descriptor.platform,
        )
        self.assertEqual(
            [
                str(layer.descriptor.digest)
                for layer in result.images[0].layers
            ],
            [layer.digest for layer in image.layers],
        )

    @property
    def builder_waiting_names(self):
        return list(self._waiting)

    def collect(self, behaviour, status=None):
        self._waiting = dict(self.builder.waitingfiles)
        return super().collect(behaviour, status=status)

    @defer.inlineCallbacks
    def test_layers_are_not_hashed_again(self):
        # The sha256 and size computed by the download process while
        # writing each layer are what the layer is checked against.
        behaviour, result = self.gather(make_test_image())
        checked = []
        real_check = behaviour._checkDownload
        self.patch(
            behaviour,
            "_checkDownload",
            lambda name, descriptor: checked.append(name)
            or real_check(name, descriptor),
        )
        upload_path = yield self.collect(behaviour)
        self.assertEqual(BuildStatus.UPLOADING, behaviour.build.status)
        self.assertEqual(
            sorted(
                set(os.listdir(upload_path)) - {"index.json", "oci-layout"}
            ),
            sorted(checked),
        )
        for layer in result.images[0].layers:
            digest = layer.descriptor.digest
            download = behaviour.downloads[f"blobs-sha256-{digest.hex}"]
            self.assertEqual(
                (digest.hex, layer.descriptor.size),
                (download.sha256, download.size),
            )
            self.assertTrue(
                os.path.isfile(
                    os.path.join(upload_path, os.path.basename(download.path))
                )
            )

    @defer.inlineCallbacks
    def test_verified_files_recorded_beside_the_upload(self):
        # What the downloads computed is left for upload processing,
        # outside the directory of the builder's files.
        behaviour, _ = self.gather(make_test_image())
        upload_path = yield self.collect(behaviour)
        leaf = os.path.dirname(os.path.dirname(upload_path))
        self.assertNotIn(VERIFIED_FILES_NAME, os.listdir(upload_path))
        verified = read_verified_files(leaf)
        self.assertEqual(sorted(os.listdir(upload_path)), sorted(verified))
        for name, record in verified.items():
            path = os.path.join(upload_path, name)
            with open(path, "rb") as f:
                data = f.read()
            self.assertEqual(
                (
                    hashlib.sha256(data).hexdigest(),
                    hashlib.sha1(data).hexdigest(),
                    len(data),
                ),
                (record.sha256, record.sha1, record.size),
            )
            self.assertTrue(record.matches(os.stat(path)))

    @defer.inlineCallbacks
    def test_log_is_stored(self):
        behaviour, _ = self.gather(make_test_image())
        yield self.collect(behaviour)
        self.assertEqual("buildlog.txt.gz", behaviour.build.log.filename)
        self.assertIsNone(behaviour.build.buildqueue_record)

    @defer.inlineCallbacks
    def test_layers_in_the_librarian_are_not_fetched(self):
        behaviour, result = self.gather(make_test_image())
        # Put the compressed blob gather made in the librarian, as an
        # earlier build's layer.
        layer = result.images[0].layers[0]
        earlier = self.factory.makeOCIFile(
            content=self.filed(self.blobNames(result)[0])
        )
        earlier.markUsed(LONG_AGO)
        transaction.commit()
        upload_path = yield self.collect(behaviour)
        self.assertReused(behaviour, result, upload_path)
        self.assertEqual(layer.descriptor.size, behaviour.bytes_reused)
        self.assertGreater(earlier.date_last_used, LONG_AGO)

    @defer.inlineCallbacks
    def test_same_digest_different_size_is_fetched(self):
        behaviour, result = self.gather(make_test_image())
        name = self.blobNames(result)[0]
        # Content whose sha256 is not the layer's: nothing to reuse.
        self.factory.makeOCIFile(
            content=b"other",
            layer_file_digest=result.images[0].layers[0].descriptor.digest,
        )
        upload_path = yield self.collect(behaviour)
        self.assertIn(name, os.listdir(upload_path))
        self.assertEqual(0, behaviour.bytes_reused)

    @defer.inlineCallbacks
    def test_bounded_concurrency(self):
        layers = [make_layer(seed=i, size=64 * 1024) for i in range(6)]
        behaviour, _ = self.gather(
            make_image(layers=layers), max_concurrency=2
        )
        self.builder_server.filecache.peak_requests = 0
        yield self.collect(behaviour)
        self.assertEqual(BuildStatus.UPLOADING, behaviour.build.status)
        self.assertLessEqual(self.builder_server.filecache.peak_requests, 2)

    @defer.inlineCallbacks
    def test_missing_blob_in_filemap(self):
        behaviour, result = self.gather(make_test_image())
        del self.builder.waitingfiles[self.blobNames(result)[-1]]
        self.assertIsNone((yield self.collect(behaviour)))
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, behaviour.build.status)
        self.assertIn(
            "did not return blobs-sha256-", behaviour.build.failure_reason
        )
        self.assertNothingCollected()

    @defer.inlineCallbacks
    def test_malformed_index(self):
        behaviour, _ = self.gather(make_test_image())
        path = os.path.join(self.work_dir, "index.json")
        with open(path, "w") as f:
            json.dump({"manifests": [{"digest": "sha256:nope"}]}, f)
        self.builder.addWaitingFile(path)
        self.assertIsNone((yield self.collect(behaviour)))
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, behaviour.build.status)
        self.assertIn(
            "Build returned a bad image: Not a sha256 digest: 'sha256:nope'",
            behaviour.build.failure_reason,
        )
        self.assertNothingCollected()

    @defer.inlineCallbacks
    def test_index_of_too_many_images(self):
        # Beyond MAX_UPLOAD_IMAGES, nothing but the index is fetched.
        self.useFixture(
            MockPatch("lp.oci.model.ociupload.MAX_UPLOAD_IMAGES", 1)
        )
        behaviour, _ = self.gather(make_test_image())
        index = json.loads(self.filed("index.json"))
        index["manifests"].append(
            dict(index["manifests"][0], digest="sha256:" + "0" * 64)
        )
        path = os.path.join(self.work_dir, "index.json")
        with open(path, "w") as f:
            json.dump(index, f)
        self.builder.addWaitingFile(path)
        self.assertIsNone((yield self.collect(behaviour)))
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, behaviour.build.status)
        self.assertIn(
            "index.json lists 2 images; an upload may list at most 1",
            behaviour.build.failure_reason,
        )
        self.assertNotIn("\n", behaviour.build.failure_reason)
        self.assertNothingCollected()

    @defer.inlineCallbacks
    def test_index_of_as_many_images_as_the_bound(self):
        self.useFixture(
            MockPatch("lp.oci.model.ociupload.MAX_UPLOAD_IMAGES", 1)
        )
        behaviour, _ = self.gather(make_test_image())
        self.assertIsNotNone((yield self.collect(behaviour)))
        self.assertEqual(BuildStatus.UPLOADING, behaviour.build.status)

    def test_checkDownload(self):
        # check_file, by what the download process computed.
        build = self.factory.makeOCIRecipeBuild()
        behaviour = OCIRecipeBuildBehaviour(build)
        digest = "sha256:" + hashlib.sha256(b"blob").hexdigest()
        descriptor = OCIDescriptor("application/octet-stream", digest, 4)
        behaviour.downloads[descriptor.file_name] = DownloadResult(
            "path", "sha1", hashlib.sha256(b"blob").hexdigest(), 4
        )
        behaviour._checkDownload(descriptor.file_name, descriptor)
        for result in (
            DownloadResult("path", "sha1", "0" * 64, 4),
            DownloadResult("path", "sha1", digest[len("sha256:") :], 5),
        ):
            behaviour.downloads[descriptor.file_name] = result
            error = self.assertRaises(
                OCILayoutError,
                behaviour._checkDownload,
                descriptor.file_name,
                descriptor,
            )
            self.assertEqual(
                f"{descriptor.file_name} does not match its descriptor",
                str(error),
            )

    @defer.inlineCallbacks
    def test_layer_of_a_legacy_build_is_reused(self):
        # Reuse goes by the content's sha256 and size, whatever digest
        # the file was recorded under (here a legacy build's bare hex).
        behaviour, result = self.gather(make_test_image())
        self.factory.makeOCIFile(
            content=self.filed(self.blobNames(result)[0]),
            layer_file_digest=hashlib.sha256(b"digests.json").hexdigest(),
        )
        transaction.commit()
        upload_path = yield self.collect(behaviour)
        self.assertReused(behaviour, result, upload_path)

    @defer.inlineCallbacks
    def test_restricted_or_expiring_layers_are_fetched(self):
        # A private build's layer, or one about to expire, is not reused.
        behaviour, result = self.gather(make_test_image())
        names = self.blobNames(result)
        for name, restricted, expires in (
            (names[0], True, None),
            (names[1], False, datetime.now(timezone.utc) + timedelta(hours=1)),
        ):
            self.factory.makeOCIFile(
                library_file=self.factory.makeLibraryFileAlias(
                    content=self.filed(name),
                    restricted=restricted,
                    expires=expires,
                )
            )
        transaction.commit()
        upload_path = yield self.collect(behaviour)
        self.assertEqual(BuildStatus.UPLOADING, behaviour.build.status)
        for name in names:
            self.assertIn(name, os.listdir(upload_path))
        self.assertEqual(0, behaviour.bytes_reused)

    @defer.inlineCallbacks
    def test_manifest_not_matching_its_descriptor(self):
        # A manifest that does not match its digest is a builder error.
        behaviour, result = self.gather(make_test_image())
        index = json.loads(self.filed("index.json"))
        name = "blobs-sha256-" + index["manifests"][0]["digest"][7:]
        path = os.path.join(self.work_dir, name)
        with open(path, "w") as f:
            f.write("{}")
        self.builder.addWaitingFile(path)
        self.assertIsNone((yield self.collect(behaviour)))
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, behaviour.build.status)
        self.assertEqual(
            "Cannot collect the build's files: Build returned a bad image: "
            f"{name} does not match its descriptor",
            behaviour.build.failure_reason,
        )
        self.assertNothingCollected()

    @defer.inlineCallbacks
    def test_missing_config(self):
        behaviour, result = self.gather(make_test_image())
        name = f"blobs-sha256-{result.images[0].config_digest.hex}"
        del self.builder.waitingfiles[name]
        self.assertIsNone((yield self.collect(behaviour)))
        self.assertEqual(
            f"Cannot collect the build's files: Build did not return {name}.",
            behaviour.build.failure_reason,
        )
        self.assertNothingCollected()

    @defer.inlineCallbacks
    def test_legacy_upload(self):
        build = self.factory.makeOCIRecipeBuild()
        behaviour = self.makeBehaviour(build)
        files = file_legacy_upload(
            self.builder,
            behaviour.build_cookie,
            make_test_image(),
            self.work_dir,
        )
        upload_path = yield self.collect(behaviour)
        self.assertEqual("legacy", behaviour.upload_format)
        self.assertEqual(sorted(files), sorted(os.listdir(upload_path)))

    @defer.inlineCallbacks
    def test_legacy_upload_reuses_by_content_digest(self):
        # A layer is reused when the librarian holds content with its
        # digest, however an earlier build spelt it; a pulled layer's
        # registry digest is not the digest of the file the builder
        # made, so that layer is fetched.
        image = make_test_image()
        build = self.factory.makeOCIRecipeBuild()
        behaviour = self.makeBehaviour(build)
        files = file_legacy_upload(
            self.builder,
            behaviour.build_cookie,
            image,
            self.work_dir,
            pulled=(0,),
        )
        digests = json.loads(files["digests.json"])[0]
        pulled = digests[image.diff_ids[0]]
        local = digests[image.diff_ids[1]]
        self.factory.makeOCIFile(
            content=b"pulled", layer_file_digest=pulled["digest"][7:]
        )
        self.factory.makeOCIFile(
            content=files[local["layer_id"] + ".tar.gz"],
            layer_file_digest="sha256:" + local["digest"],
        )
        transaction.commit()
        upload_path = yield self.collect(behaviour)
        names = os.listdir(upload_path)
        self.assertIn(pulled["layer_id"] + ".tar.gz", names)
        self.assertNotIn(local["layer_id"] + ".tar.gz", names)
        self.assertIn(
            digests[image.diff_ids[2]]["layer_id"] + ".tar.gz", names
        )

    @defer.inlineCallbacks
    def test_malformed_sha1_in_filemap(self):
        # Used to escape from the worker as a ValueError traceback,
        # leaving the build GATHERING.
        behaviour, _ = self.gather(make_test_image())
        status = yield behaviour._worker.status()
        status["filemap"]["index.json"] = "not-a-sha1"
        self.assertIsNone((yield self.collect(behaviour, status)))
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, behaviour.build.status)
        self.assertIn(
            "bad SHA-1 for 'index.json'", behaviour.build.failure_reason
        )
        self.assertNothingCollected()

    @defer.inlineCallbacks
    def test_legacy_layer_name_too_long(self):
        # A name that fits NAME_MAX but not with the temporary name a
        # download adds used to escape as an OSError traceback.
        build = self.factory.makeOCIRecipeBuild()
        behaviour = self.makeBehaviour(build)
        image = make_test_image()
        files = file_legacy_upload(
            self.builder, behaviour.build_cookie, image, self.work_dir
        )
        digests = json.loads(files["digests.json"])
        details = digests[0][image.diff_ids[0]]
        layer = files[details["layer_id"] + ".tar.gz"]
        details["layer_id"] = "a" * 245
        for name, data in (
            ("digests.json", json.dumps(digests).encode()),
            (details["layer_id"] + ".tar.gz", layer),
        ):
            path = os.path.join(self.work_dir, name)
            with open(path, "wb") as f:
                f.write(data)
            self.builder.addWaitingFile(path)
        self.assertIsNone((yield self.collect(behaviour)))
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, behaviour.build.status)
        self.assertIn(
            "Build returned a file named 'aaa", behaviour.build.failure_reason
        )
        self.assertNothingCollected()

    @defer.inlineCallbacks
    def test_legacy_config_path_is_refused(self):
        build = self.factory.makeOCIRecipeBuild()
        behaviour = self.makeBehaviour(build)
        files = file_legacy_upload(
            self.builder,
            behaviour.build_cookie,
            make_test_image(),
            self.work_dir,
        )
        manifest = json.loads(files["manifest.json"])
        manifest[0]["Config"] = "blobs/sha256/" + "a" * 64
        path = os.path.join(self.work_dir, "manifest.json")
        with open(path, "w") as f:
            json.dump(manifest, f)
        self.builder.addWaitingFile(path)
        self.assertIsNone((yield self.collect(behaviour)))
        self.assertEqual(BuildStatus.FAILEDTOUPLOAD, behaviour.build.status)
        self.assertIn("is not a file name", behaviour.build.failure_reason)


class TestOCIRecipeBuildBehaviour(BehaviourTestMixin, TestCaseWithFactory):
    layer = OCIBuildFarmLayer


class TestOCIRecipeBuildBehaviourSQLite(
    BehaviourTestMixin, TestCaseWithFactory
):
    layer = SQLiteOCIBuildFarmLayer
