# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for reading the files a build hands over."""

__all__ = []

import json
import os
import shutil
import tracemalloc

import transaction
from fixtures import TempDir
from testtools import TestCase
from twisted.internet import defer

from lp.archiveuploader.utils import UploadError
from lp.buildmaster.enums import BuildStatus
from lp.oci.model.ociupload import (
    OCIUploadError,
    parse_legacy_upload,
    read_json_file,
    read_json_library_file,
)
from lp.oci.tests.buildfarm import (
    BuildFarmTestMixin,
    OCIBuildFarmLayer,
    SQLiteOCIBuildFarmLayer,
    make_oci_upload_dir,
    make_test_image,
    process_build_upload,
    upload_files_dir,
)
from lp.services.librarian.storage import get_librarian_storage
from lp.testing import TestCaseWithFactory
from lp.testing.layers import SQLiteLaunchpadZopelessLayer
from ocitypes.descriptor import MediaType
from ocitypes.digest import Digest
from ocitypes.filenames import blob_file_name, digest_from_blob_file_name
from ocitypes.safejson import MAX_JSON_DEPTH


class TestReadJSONFile(TestCase):
    def write(self, data):
        path = os.path.join(self.useFixture(TempDir()).path, "index.json")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_reads_json(self):
        self.assertEqual({"a": [1]}, read_json_file(self.write(b'{"a":[1]}')))

    def test_deeply_nested_json_is_an_upload_error(self):
        # Deep enough to overflow the parser's recursion, which used to
        # escape as a RecursionError traceback.
        path = self.write(b"[" * 100000 + b"]" * 100000)
        error = self.assertRaises(OCIUploadError, read_json_file, path)
        self.assertIn("too deeply nested", str(error))

    def test_depth_limit(self):
        depth = MAX_JSON_DEPTH + 1
        path = self.write(b"[" * depth + b"]" * depth)
        error = self.assertRaises(OCIUploadError, read_json_file, path)
        self.assertIn("index.json is too deeply nested", str(error))

    def test_oversized(self):
        path = self.write(b" " * (4 * 1024 * 1024 + 1) + b"{}")
        error = self.assertRaises(OCIUploadError, read_json_file, path)
        self.assertIn("index.json", str(error))


class TestReadJSONLibraryFile(TestCaseWithFactory):
    layer = SQLiteLaunchpadZopelessLayer

    def test_allocates_about_the_document(self):
        # It used to allocate MAX_JSON_SIZE + 1 bytes (4 MiB) whatever
        # the document's size.
        lfa = self.factory.makeLibraryFileAlias(
            filename="index.json", content=b'{"a": [1]}'
        )
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        self.assertEqual({"a": [1]}, read_json_library_file(lfa))
        _, peak = tracemalloc.get_traced_memory()
        self.assertLess(peak, 256 * 1024)

    def test_size_on_disk_differs(self):
        lfa = self.factory.makeLibraryFileAlias(
            filename="index.json", content=b'{"a": [1]}'
        )
        path = get_librarian_storage().getPath(lfa.content.sha256)
        for data, message in (
            (
                b'{"a":1}',
                "index.json is 7 bytes in the librarian, 10 recorded",
            ),
            (
                b'{"a": [1]}   ',
                "index.json is 11+ bytes in the librarian, 10 recorded",
            ),
        ):
            os.chmod(path, 0o644)
            with open(path, "wb") as f:
                f.write(data)
            error = self.assertRaises(
                OCIUploadError, read_json_library_file, lfa
            )
            self.assertEqual(message, str(error))


class TestParseLegacyUpload(TestCase):
    def makeUpload(self, count=3):
        ids = [f"{n:064x}" for n in range(1, count + 1)]
        manifest = [
            {
                "Config": "c" * 64 + ".json",
                "Layers": [f"{layer_id}/layer.tar" for layer_id in ids],
            }
        ]
        digests = {
            f"sha256:{n:064x}": {
                "digest": f"{n + 100:064x}",
                "source": "",
                "layer_id": layer_id,
            }
            for n, layer_id in enumerate(ids, 1)
        }
        return manifest, digests, ids

    def test_layers_in_manifest_order(self):
        # digests.json's key order used to give the layers' order.
        manifest, digests, ids = self.makeUpload()
        backwards = dict(reversed(list(digests.items())))
        (image,) = parse_legacy_upload(manifest, [backwards])
        self.assertEqual(ids, [layer.layer_id for layer in image.layers])

    def test_layer_not_in_digests(self):
        manifest, digests, ids = self.makeUpload()
        manifest[0]["Layers"][1] = "f" * 64 + "/layer.tar"
        error = self.assertRaises(
            OCIUploadError, parse_legacy_upload, manifest, [digests]
        )
        self.assertEqual(
            f"manifest.json layer {'f' * 64}/layer.tar of {'c' * 64}.json "
            "is not in digests.json",
            str(error),
        )

    def test_layer_listed_twice_instead_of_another(self):
        manifest, digests, ids = self.makeUpload()
        manifest[0]["Layers"][2] = manifest[0]["Layers"][0]
        error = self.assertRaises(
            OCIUploadError, parse_legacy_upload, manifest, [digests]
        )
        self.assertEqual(
            f"manifest.json does not list every layer of {'c' * 64}.json "
            "that digests.json describes",
            str(error),
        )

    def test_repeated_layer(self):
        # A layer repeated in the image is one digests.json entry, keyed
        # by its diff_id; builders with the patch series list its first
        # occurrence's file in manifest.json, as they file it.
        manifest, digests, ids = self.makeUpload()
        manifest[0]["Layers"] = [f"{layer_id}.tar.gz" for layer_id in ids]
        manifest[0]["Layers"].append(manifest[0]["Layers"][1])
        (image,) = parse_legacy_upload(manifest, [digests])
        self.assertEqual(
            ids + [ids[1]], [layer.layer_id for layer in image.layers]
        )


def _descriptor(media_type, data):
    return {
        "mediaType": media_type,
        "digest": str(Digest.of_bytes(data)),
        "size": len(data),
    }


class TestOCIUploadError(TestCase):
    def test_errors_are_upload_errors(self):
        self.assertTrue(issubclass(OCIUploadError, UploadError))
        error = OCIUploadError("two\nlines")
        self.assertEqual("two lines", str(error))


class ThreePathsMixin(BuildFarmTestMixin):
    """ocilayout's rules hold for fetching, processing and verifying.

    Each case is an OCI upload whose index.json is rewritten; the build
    farm (fetching from a real builder), the upload processor and
    `getUploadProblems` (reading the librarian) must all come to the
    same verdict, with the same message.
    """

    def setUp(self):
        super().setUp()
        self.setUpBuildFarm()

    def makeUpload(self, rewrite):
        """A gathered OCI upload whose index.json ``rewrite`` changes.

        ``rewrite`` is called with the parsed index.json and a function
        adding a blob to the upload (returning its descriptor).
        """
        work = self.useFixture(TempDir()).path
        upload = make_oci_upload_dir([make_test_image()], work)
        index_path = os.path.join(upload, "index.json")
        with open(index_path) as f:
            index = json.load(f)

        def add_blob(media_type, value):
            data = json.dumps(value).encode()
            digest = Digest.of_bytes(data)
            with open(os.path.join(upload, blob_file_name(digest)), "wb") as f:
                f.write(data)
            return _descriptor(media_type, data)

        index = rewrite(index, add_blob)
        with open(index_path, "w") as f:
            json.dump(index, f)
        return upload

    @defer.inlineCallbacks
    def fetch(self, upload):
        """The build farm's verdict: a Deferred (status, reason)."""
        build = self.factory.makeOCIRecipeBuild()
        behaviour = self.makeBehaviour(build)
        self.builder.startBuild(behaviour.build_cookie)
        for name in sorted(os.listdir(upload)):
            self.builder.addWaitingFile(os.path.join(upload, name))
        self.builder.buildComplete("OK")
        yield self.collect(behaviour)
        return build.status, build.failure_reason

    def process(self, upload):
        """The upload processor's verdict: (status, reason)."""
        build = self.factory.makeOCIRecipeBuild(status=BuildStatus.UPLOADING)
        transaction.commit()
        leaf = os.path.join(
            self.upload_root,
            "incoming",
            build.getUploadDirLeaf(build.build_cookie),
        )
        target = upload_files_dir(build, leaf)
        shutil.copytree(upload, target)
        process_build_upload(leaf)
        return build.status, build.failure_reason

    def verify(self, upload):
        """`getUploadProblems` of a build holding the upload's files."""
        build = self.factory.makeOCIRecipeBuild()
        for name in sorted(os.listdir(upload)):
            with open(os.path.join(upload, name), "rb") as f:
                data = f.read()
            build.addFile(
                self.factory.makeLibraryFileAlias(filename=name, content=data),
                layer_file_digest=digest_from_blob_file_name(name),
            )
        return build.getUploadProblems()

    @defer.inlineCallbacks
    def assertRefusedEverywhere(self, upload, message):
        fetched = yield self.fetch(upload)
        self.assertEqual(
            (
                BuildStatus.FAILEDTOUPLOAD,
                "Cannot collect the build's files: Build returned a bad "
                f"image: {message}",
            ),
            fetched,
        )
        status, reason = self.process(upload)
        self.assertEqual(
            (BuildStatus.FAILEDTOUPLOAD, message), (status, reason)
        )
        self.assertEqual([message], self.verify(upload))

    @defer.inlineCallbacks
    def assertAcceptedEverywhere(self, upload):
        fetched = yield self.fetch(upload)
        self.assertEqual((BuildStatus.UPLOADING, None), fetched)
        self.assertEqual((BuildStatus.FULLYBUILT, None), self.process(upload))
        self.assertEqual([], self.verify(upload))

    def test_accepted(self):
        return self.assertAcceptedEverywhere(
            self.makeUpload(lambda index, add_blob: index)
        )

    def test_entry_without_media_type(self):
        def rewrite(index, add_blob):
            del index["manifests"][0]["mediaType"]
            return index

        return self.assertRefusedEverywhere(
            self.makeUpload(rewrite), "An index.json entry has no media type"
        )

    def test_entry_without_size(self):
        def rewrite(index, add_blob):
            del index["manifests"][0]["size"]
            return index

        return self.assertRefusedEverywhere(
            self.makeUpload(rewrite),
            "An index.json entry has no valid size",
        )

    def test_nested_index(self):
        # Builders list every image's manifest in index.json itself.
        def rewrite(index, add_blob):
            return {
                "schemaVersion": 2,
                "mediaType": MediaType.OCI_INDEX,
                "manifests": [add_blob(MediaType.OCI_INDEX, index)],
            }

        return self.assertRefusedEverywhere(
            self.makeUpload(rewrite),
            f"index.json lists {MediaType.OCI_INDEX}, not an image manifest",
        )

    def test_deeply_nested_document(self):
        # json's RecursionError is refused as a bad document.
        upload = self.makeUpload(lambda index, add_blob: index)
        with open(os.path.join(upload, "index.json"), "w") as f:
            f.write("[" * 100000 + "]" * 100000)
        return self.assertRefusedEverywhere(
            upload, "index.json is nested too deeply"
        )


class TestThreePaths(ThreePathsMixin, TestCaseWithFactory):
    layer = OCIBuildFarmLayer


class TestThreePathsSQLite(ThreePathsMixin, TestCaseWithFactory):
    layer = SQLiteOCIBuildFarmLayer
