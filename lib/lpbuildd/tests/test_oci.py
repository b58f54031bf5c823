# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `OCIBuildManager.gatherResults`."""

__all__ = []

import hashlib
import json
import os
import random
import shutil
import stat
import urllib.request
import xmlrpc.client

from fixtures import MonkeyPatch, TempDir
from testtools import TestCase

from lpbuildd import filecache
from lpbuildd.builder import Builder
from lpbuildd.oci import (
    OCIBuildManager,
    OCIGatherError,
    parse_containerd_sources,
    read_distribution_sources,
)
from lpbuildd.ociimage.errors import ArchiveError, DigestMismatch
from lpbuildd.ociimage.image import LAYER_SOURCE, LAYER_SOURCES
from lpbuildd.replay import ReplayBackend
from lpbuildd.testing.layers import BuilderLayer
from lpbuildd.tests.archivebuilder import (
    corrupt_member,
    docker25_classic,
    docker25_containerd,
    legacy_docker_save,
    make_image,
    make_layer,
    oci_archive,
)
from ocitypes.digest import Digest
from ocitypes.safejson import MAX_JSON_SIZE


def _load(path):
    with open(path, "rb") as f:
        return json.load(f)


def _sha1(path):
    with open(path, "rb") as f:
        return hashlib.sha1(f.read()).hexdigest()


class TestGatherResults(TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(TempDir()).path
        os.mkdir(os.path.join(self.tmp, "cache"))
        self.builder = Builder(os.path.join(self.tmp, "cache"))
        self.builder.startBuild("1-1")
        self.addCleanup(self.builder.reset)
        self.build_dir = os.path.join(self.tmp, "build")
        os.mkdir(self.build_dir)

    def makeArchive(self, builder):
        path = os.path.join(self.tmp, "save.tar")
        builder.write(path)
        return path

    def makeManager(
        self, archive, exit_status=0, docker_root=None, content_listing=None
    ):
        return OCIBuildManager(
            self.builder,
            ReplayBackend(archive, exit_status, content_listing),
            "example.com/app:latest",
            self.build_dir,
            docker_root=docker_root,
        )

    def test_docker25_archive_is_filed_as_an_oci_upload(self):
        image = make_image(layers=[make_layer(seed=1), make_layer(seed=2)])
        manager = self.makeManager(self.makeArchive(docker25_classic([image])))
        result = manager.gatherResults()
        self.assertEqual("docker25-classic", result.format)
        self.assertEqual(
            [
                ["ctr", "--namespace", "moby", "content", "ls"],
                ["docker", "save", "example.com/app:latest"],
            ],
            manager.backend.commands,
        )
        filemap = self.builder.waitingfiles
        upload = os.path.join(self.build_dir, "oci-upload")
        index = _load(os.path.join(upload, "index.json"))
        manifest_digest = Digest.parse(index["manifests"][0]["digest"])
        manifest_name = f"blobs-sha256-{manifest_digest.hex}"
        manifest = _load(
            os.path.join(upload, "blobs", "sha256", manifest_digest.hex)
        )
        expected = {"index.json", "oci-layout", manifest_name}
        for desc in [manifest["config"]] + manifest["layers"]:
            expected.add("blobs-sha256-" + Digest.parse(desc["digest"]).hex)
        self.assertEqual(expected, set(filemap))
        # Every name maps to the sha1 of the right content in the cache.
        for name, sha1 in filemap.items():
            relpath = (
                name.replace("-", "/") if name.startswith("blobs-") else name
            )
            self.assertEqual(sha1, _sha1(os.path.join(upload, relpath)))
            self.assertEqual(sha1, _sha1(self.builder.cachePath(sha1)))

    def _fileAndRecordHashing(self, archive, seekable=False):
        """Gather `archive`; return the paths `sha1_of_path` read."""
        hashed = []
        real_sha1_of_path = filecache.sha1_of_path

        def sha1_of_path(path):
            hashed.append(os.path.getsize(path))
            return real_sha1_of_path(path)

        self.useFixture(
            MonkeyPatch("lpbuildd.filecache.sha1_of_path", sha1_of_path)
        )
        manager = OCIBuildManager(
            self.builder,
            ReplayBackend(archive, seekable=seekable),
            "example.com/app:latest",
            self.build_dir,
        )
        return manager.gatherResults(), hashed

    def test_layer_blobs_are_filed_without_reading_them_again(self):
        # Layers are SHA-1-hashed as gather writes them, which is the
        # name the file cache files them by: filing reads none of them
        # again.  Layers above the JSON size limit are streamed, as a
        # tar (compressed by gather) or already gzipped (kept as is).
        # Small layers (read whole, see `BlobStore.as_layer`) too.
        rng = random.Random(1)
        big = make_layer({"big": rng.randbytes(MAX_JSON_SIZE + 1024)})
        cases = [
            (big, None),
            (big, "gzip"),
            (make_layer(seed=3), None),
            (make_layer(seed=4), "gzip"),
        ]
        for layer, compression in cases:
            self.builder.reset()
            self.builder.startBuild("1-1")
            for name in os.listdir(self.build_dir):
                shutil.rmtree(os.path.join(self.build_dir, name))
            archive = oci_archive(
                [make_image(layers=[layer])], layer_compression=compression
            )
            result, hashed = self._fileAndRecordHashing(
                self.makeArchive(archive)
            )
            self.assertEqual(1, len(result.sha1s))
            [(relpath, sha1)] = result.sha1s.items()
            upload = os.path.join(self.build_dir, "oci-upload")
            self.assertEqual(_sha1(os.path.join(upload, relpath)), sha1)
            self.assertEqual(
                sha1, self.builder.waitingfiles[relpath.replace("/", "-")]
            )
            self.assertEqual(sha1, _sha1(self.builder.cachePath(sha1)))
            # Only the documents were hashed by the file cache.
            layer_size = os.path.getsize(os.path.join(upload, relpath))
            self.assertEqual(4, len(hashed))  # index, layout, manifest, config
            self.assertNotIn(layer_size, hashed)

    def test_seekable_replay_reads_the_archive_file(self):
        # lp-oci run's replay hands gather the archive file itself, so
        # it reads members where they lie (in parallel), and files the
        # same upload as from a pipe.
        image = make_image(layers=[make_layer(seed=1), make_layer(seed=2)])
        archive = self.makeArchive(docker25_classic([image]))
        backend = ReplayBackend(archive, seekable=True)
        proc = backend.run(
            ["docker", "save", "x"], get_output=True, return_process=True
        )
        self.addCleanup(proc.stdout.close)
        self.assertTrue(stat.S_ISREG(os.fstat(proc.stdout.fileno()).st_mode))
        self.assertEqual(0, proc.wait())
        seekable_result, _ = self._fileAndRecordHashing(archive, True)
        seekable_files = dict(self.builder.waitingfiles)
        self.builder.reset()
        self.builder.startBuild("1-1")
        shutil.rmtree(os.path.join(self.build_dir, "oci-upload"))
        pipe_result, _ = self._fileAndRecordHashing(archive)
        self.assertEqual(seekable_files, self.builder.waitingfiles)
        self.assertEqual(pipe_result.index, seekable_result.index)

    def test_seekable_replay_reports_docker_save_failing(self):
        archive = self.makeArchive(docker25_classic([make_image()]))
        manager = OCIBuildManager(
            self.builder,
            ReplayBackend(archive, exit_status=1, seekable=True),
            "example.com/app:latest",
            self.build_dir,
        )
        error = self.assertRaises(OCIGatherError, manager.gatherResults)
        self.assertIn("failed with status 1", str(error))
        self.assertEqual({}, self.builder.waitingfiles)
        self.assertEqual([], os.listdir(self.build_dir))

    def test_legacy_archive(self):
        image = make_image()
        manager = self.makeManager(
            self.makeArchive(legacy_docker_save([image]))
        )
        self.assertEqual("docker-save", manager.gatherResults().format)
        self.assertIn("index.json", self.builder.waitingfiles)

    def test_failed_docker_save_files_nothing(self):
        manager = self.makeManager(
            self.makeArchive(docker25_classic([make_image()])), exit_status=1
        )
        error = self.assertRaises(OCIGatherError, manager.gatherResults)
        self.assertIn("failed with status 1", str(error))
        self.assertEqual({}, self.builder.waitingfiles)
        self.assertEqual([], os.listdir(self.build_dir))

    def test_corrupt_archive_files_nothing(self):
        image = make_image()
        archive = docker25_classic([image])
        corrupt_member(archive, "blobs/sha256/" + image.diff_ids[0][7:])
        manager = self.makeManager(self.makeArchive(archive))
        error = self.assertRaises(OCIGatherError, manager.gatherResults)
        self.assertIn("does not match", str(error))
        self.assertIsInstance(error, ArchiveError)
        self.assertIsInstance(error.__cause__, DigestMismatch)
        self.assertNotIn("\n", str(error))
        self.assertEqual({}, self.builder.waitingfiles)
        self.assertEqual([], os.listdir(self.build_dir))

    def test_distribution_sources_annotate_layers(self):
        image = make_image(layers=[make_layer(seed=3), make_layer(seed=4)])
        docker_root = os.path.join(self.tmp, "docker")
        meta = os.path.join(
            docker_root,
            "image",
            "overlay2",
            "distribution",
            "v2metadata-by-diffid",
            "sha256",
        )
        os.makedirs(meta)
        with open(os.path.join(meta, image.diff_ids[0][7:]), "w") as f:
            json.dump(
                [
                    {
                        "Digest": "sha256:" + "b" * 64,
                        "SourceRepository": "docker.io/library/ubuntu",
                        "HMAC": "",
                    }
                ],
                f,
            )
        with open(os.path.join(meta, "not-a-digest"), "w") as f:
            f.write("[]")
        self.assertEqual(
            {Digest.parse(image.diff_ids[0]): "docker.io/library/ubuntu"},
            read_distribution_sources(docker_root),
        )
        manager = self.makeManager(
            self.makeArchive(docker25_classic([image])),
            docker_root=docker_root,
        )
        result = manager.gatherResults()
        layers = result.images[0].layers
        self.assertEqual(
            "docker.io/library/ubuntu",
            layers[0].descriptor.annotations[LAYER_SOURCE],
        )
        self.assertNotIn(LAYER_SOURCE, layers[1].descriptor.annotations)

    def test_containerd_labels_record_sources(self):
        image = make_image(layers=[make_layer(seed=5), make_layer(seed=6)])
        archive = docker25_containerd(
            image, media_types="oci", other_platforms=(), attestation=False
        )
        first, second = archive.images[0].layer_digests
        listing = (
            "DIGEST\tSIZE\tAGE\tLABELS\n"
            f"{first}\t2.1kB\t2 days\t"
            "containerd.io/distribution.source.docker.io=library/ubuntu,"
            "library/debian,containerd.io/uncompressed=sha256:"
            + "c" * 64
            + "\n"
            f"{second}\t1.0kB\t2 days\t\n"
        )
        manager = self.makeManager(
            self.makeArchive(archive), content_listing=listing
        )
        result = manager.gatherResults()
        # The OCI manifest is kept byte-exact, so the sources are on the
        # index entry rather than on its layers.
        (entry,) = result.index
        self.assertEqual(archive.info["manifest_digest"], str(entry.digest))
        self.assertEqual(
            {first: "docker.io/library/ubuntu"},
            json.loads(entry.annotations[LAYER_SOURCES]),
        )


class TestParseContainerdSources(TestCase):
    def test_parse(self):
        a, b, c = ("sha256:" + x * 64 for x in "abc")
        listing = (
            "DIGEST\tSIZE\tAGE\tLABELS\n"
            f"{a}\t1kB\t1 day\tcontainerd.io/gc.ref.content.l.0={b},"
            "containerd.io/distribution.source.ghcr.io=org/app\n"
            f"{b}\t1kB\t1 day\t\n"
            f"{c}\t1kB\t1 day\tcontainerd.io/distribution.source."
            "docker.io=library/ubuntu,library/debian\n"
            "not-a-digest\t1kB\t1 day\t"
            "containerd.io/distribution.source.x.io=y\n"
        )
        self.assertEqual(
            {
                Digest.parse(a): "ghcr.io/org/app",
                Digest.parse(c): "docker.io/library/ubuntu",
            },
            parse_containerd_sources(listing),
        )

    def test_empty(self):
        self.assertEqual({}, parse_containerd_sources(""))


class TestGatherResultsThroughBuilder(TestCase):
    """The filed upload is served by the real builder protocol."""

    layer = BuilderLayer

    def test_filemap_served_over_the_builder_protocol(self):
        builder = BuilderLayer.builder
        builder.startBuild("2-1")
        tmp = self.useFixture(TempDir()).path
        archive = os.path.join(tmp, "save.tar")
        docker25_classic([make_image()]).write(archive)
        build_dir = os.path.join(tmp, "build")
        os.mkdir(build_dir)
        OCIBuildManager(
            builder, ReplayBackend(archive), "app", build_dir
        ).gatherResults()
        builder.buildComplete("OK")
        rpc = xmlrpc.client.ServerProxy(BuilderLayer.url + "/rpc")
        status = rpc.status()
        self.assertEqual("BuilderStatus.WAITING", status["builder_status"])
        sha1 = status["filemap"]["index.json"]
        url = f"{BuilderLayer.url}/filecache/{sha1}"
        with urllib.request.urlopen(url) as response:
            body = response.read()
        self.assertEqual(sha1, hashlib.sha1(body).hexdigest())
        index = json.loads(body)
        self.assertEqual(2, index["schemaVersion"])
