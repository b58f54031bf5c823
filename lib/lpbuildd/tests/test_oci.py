# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `OCIBuildManager.gatherResults`.

launchpad-buildd's own tests of the patched method are in the patch
series (``lpbuildd/tests/test_oci.py`` there); these run the harness's
copy against the harness's builder, backends and archive builder.
"""

__all__ = []

import gzip
import hashlib
import json
import os
import stat
import urllib.request
import xmlrpc.client

from fixtures import TempDir
from testtools import TestCase

from lpbuildd.builder import Builder
from lpbuildd.dockersave import (
    SOURCES_ANNOTATION,
    DockerSaveError,
    parse_containerd_sources,
)
from lpbuildd.oci import OCIBuildManager, OCIGatherError
from lpbuildd.replay import ReplayBackend
from lpbuildd.testing.layers import BuilderLayer
from lpbuildd.tests.archivebuilder import (
    corrupt_member,
    docker25_classic,
    docker25_containerd,
    junk_members_with_byte_names,
    legacy_docker_save,
    make_image,
    make_layer,
)


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

    def makeManager(self, archive, upload_format="oci", **kwargs):
        return OCIBuildManager(
            self.builder,
            ReplayBackend(archive, **kwargs),
            "example.com/app:latest",
            self.build_dir,
            upload_format=upload_format,
        )

    def getFiled(self, name):
        path = self.builder.cachePath(self.builder.waitingfiles[name])
        with open(path, "rb") as f:
            return f.read()

    def assertNothingFiled(self):
        self.assertEqual({}, self.builder.waitingfiles)
        self.assertEqual([], os.listdir(self.build_dir))

    def test_junk_members_with_names_that_are_not_utf8(self):
        # Tar names are bytes: junk whose name is not UTF-8 must not end
        # the gather.  dockersave skips it unread and unlogged (large
        # members are logged by name, and launchpad-buildd's log is UTF-8).
        image = make_image(layers=[make_layer(seed=1)])
        path = os.path.join(self.tmp, "save.tar")
        with open(path, "wb") as f:
            f.write(
                junk_members_with_byte_names()
                + docker25_classic([image]).to_bytes()
            )
        for upload_format in ("oci", "legacy"):
            self.builder.reset()
            self.builder.startBuild("1-1")
            result = self.makeManager(
                path, upload_format=upload_format
            ).gatherResults()
            self.assertEqual("docker25-classic", result.format)
            self.assertNotIn(b"junk/pax", self.builder.getLogTail())

    def test_docker25_archive_is_filed_as_an_oci_upload(self):
        image = make_image(layers=[make_layer(seed=1), make_layer(seed=2)])
        manager = self.makeManager(self.makeArchive(docker25_classic([image])))
        result = manager.gatherResults()
        self.assertEqual("docker25-classic", result.format)
        # Uncompressed layers were not pulled by containerd: no ctr.
        self.assertEqual(
            [["docker", "save", "example.com/app:latest"]],
            manager.backend.commands,
        )
        filemap = self.builder.waitingfiles
        index = json.loads(self.getFiled("index.json"))
        [entry] = index["manifests"]
        manifest_name = "blobs-sha256-" + entry["digest"].split(":")[1]
        manifest = json.loads(self.getFiled(manifest_name))
        expected = {"index.json", "oci-layout", manifest_name}
        for descriptor in [manifest["config"]] + manifest["layers"]:
            expected.add("blobs-sha256-" + descriptor["digest"].split(":")[1])
        self.assertEqual(expected, set(filemap))
        self.assertEqual(filemap, result.files)
        for name, sha1 in filemap.items():
            self.assertEqual(sha1, _sha1(self.builder.cachePath(sha1)))
            if name.startswith("blobs-sha256-"):
                self.assertEqual(
                    name.split("-")[-1],
                    hashlib.sha256(self.getFiled(name)).hexdigest(),
                )
        # The layers are the image's, gzipped.
        self.assertEqual(
            image.layers,
            [
                gzip.decompress(self.getFiled("blobs-sha256-" + hex_digest))
                for hex_digest in (
                    d["digest"].split(":")[1] for d in manifest["layers"]
                )
            ],
        )
        self.assertEqual([], os.listdir(self.build_dir))

    def test_summary_names_the_images(self):
        # The summary carries each image's names, normalised as
        # `gather` prints them (harness only: `lp-oci run` reports them).
        image = make_image(
            layers=[make_layer(seed=1)],
            tags=("ubuntu:24.04", "example.com/team/app:1.0"),
        )
        manager = self.makeManager(self.makeArchive(docker25_classic([image])))
        (summary,) = manager.gatherResults().images
        self.assertEqual(
            ("docker.io/library/ubuntu:24.04", "example.com/team/app:1.0"),
            summary.names,
        )

    def test_legacy_files_without_upload_format(self):
        # Without "upload_format": "oci", the files today's Launchpad
        # reads.
        image = make_image(layers=[make_layer(seed=1), make_layer(seed=2)])
        manager = self.makeManager(
            self.makeArchive(docker25_classic([image])), upload_format=None
        )
        result = manager.gatherResults()
        [section] = json.loads(self.getFiled("digests.json"))
        [entry] = json.loads(self.getFiled("manifest.json"))
        self.assertEqual(
            [f"{diff_id.split(':')[1]}.tar.gz" for diff_id in image.diff_ids],
            entry["Layers"],
        )
        self.assertEqual(sorted(image.diff_ids), sorted(section))
        for diff_id, layer in zip(image.diff_ids, image.layers):
            layer_file = self.getFiled(f"{diff_id.split(':')[1]}.tar.gz")
            self.assertEqual(layer, gzip.decompress(layer_file))
            self.assertEqual(
                hashlib.sha256(layer_file).hexdigest(),
                section[diff_id]["digest"],
            )
        self.assertIn(entry["Config"], self.builder.waitingfiles)
        self.assertEqual("docker25-classic", result.format)

    def test_seekable_replay_files_the_same_upload(self):
        # lp-oci run's replay hands the archive file itself over, which
        # is read as a stream too, and files the same upload.
        archive = self.makeArchive(docker25_classic([make_image()]))
        backend = ReplayBackend(archive, seekable=True)
        proc = backend.run(
            ["docker", "save", "x"], get_output=True, return_process=True
        )
        self.addCleanup(proc.stdout.close)
        self.assertTrue(stat.S_ISREG(os.fstat(proc.stdout.fileno()).st_mode))
        self.makeManager(archive, seekable=True).gatherResults()
        seekable_files = dict(self.builder.waitingfiles)
        self.builder.reset()
        self.builder.startBuild("1-1")
        self.makeManager(archive).gatherResults()
        self.assertEqual(seekable_files, self.builder.waitingfiles)

    def test_progress(self):
        archive = self.makeArchive(docker25_classic([make_image()]))
        reports = []
        OCIBuildManager(
            self.builder,
            ReplayBackend(archive),
            "app",
            self.build_dir,
            progress=lambda *args: reports.append(args),
        ).gatherResults()
        self.assertEqual(
            ("gather", os.path.getsize(archive), None), reports[-1]
        )
        counts = [done for _, done, _ in reports]
        self.assertEqual(sorted(counts), counts)

    def test_legacy_archive(self):
        manager = self.makeManager(
            self.makeArchive(legacy_docker_save([make_image()]))
        )
        self.assertEqual("docker-save", manager.gatherResults().format)
        self.assertIn("index.json", self.builder.waitingfiles)

    def test_failed_docker_save_files_nothing(self):
        manager = self.makeManager(
            self.makeArchive(docker25_classic([make_image()])), exit_status=1
        )
        error = self.assertRaises(OCIGatherError, manager.gatherResults)
        self.assertIn("failed with status 1", str(error))
        self.assertNothingFiled()

    def test_seekable_replay_reports_docker_save_failing(self):
        manager = self.makeManager(
            self.makeArchive(docker25_classic([make_image()])),
            exit_status=1,
            seekable=True,
        )
        error = self.assertRaises(OCIGatherError, manager.gatherResults)
        self.assertIn("failed with status 1", str(error))
        self.assertNothingFiled()

    def test_corrupt_archive_files_nothing(self):
        image = make_image()
        archive = docker25_classic([image])
        blob = "blobs/sha256/" + image.diff_ids[0][7:]
        corrupt_member(archive, blob)
        manager = self.makeManager(self.makeArchive(archive))
        error = self.assertRaises(OCIGatherError, manager.gatherResults)
        self.assertIn(f"{blob} does not match its digest", str(error))
        self.assertIsInstance(error.__cause__, DockerSaveError)
        self.assertNotIn("\n", str(error))
        self.assertNothingFiled()

    def test_distribution_sources_read_through_the_backend(self):
        # Docker's pull metadata is read from the build environment (the
        # backend), for whatever storage driver, never from the host.
        image = make_image(layers=[make_layer(seed=3), make_layer(seed=4)])
        root = os.path.join(self.tmp, "root")
        meta = os.path.join(
            root,
            "var/lib/docker/image/overlay2/distribution",
            "v2metadata-by-diffid/sha256",
        )
        os.makedirs(meta)
        with open(os.path.join(meta, image.diff_ids[0][7:]), "w") as f:
            json.dump(
                [
                    {
                        "Digest": "sha256:" + "b" * 64,
                        "SourceRepository": "docker.io/library/ubuntu",
                    }
                ],
                f,
            )
        archive = self.makeArchive(docker25_classic([image]))
        self.makeManager(archive, root=root).gatherResults()
        [entry] = json.loads(self.getFiled("index.json"))["manifests"]
        manifest = json.loads(
            self.getFiled("blobs-sha256-" + entry["digest"].split(":")[1])
        )
        self.assertEqual(
            {manifest["layers"][0]["digest"]: "docker.io/library/ubuntu"},
            json.loads(entry["annotations"][SOURCES_ANNOTATION]),
        )
        # In the legacy files, digests.json says it too.
        self.builder.reset()
        self.builder.startBuild("1-1")
        self.makeManager(
            archive, upload_format="legacy", root=root
        ).gatherResults()
        [section] = json.loads(self.getFiled("digests.json"))
        self.assertEqual(
            "docker.io/library/ubuntu", section[image.diff_ids[0]]["source"]
        )
        self.assertEqual("", section[image.diff_ids[1]]["source"])

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
        result = self.makeManager(
            self.makeArchive(archive), content_listing=listing
        ).gatherResults()
        self.assertEqual("docker25-containerd", result.format)
        # The registry manifest is kept byte for byte.
        [entry] = json.loads(self.getFiled("index.json"))["manifests"]
        self.assertEqual(archive.info["manifest_digest"], entry["digest"])
        self.assertEqual(
            {first: "docker.io/library/ubuntu"},
            json.loads(entry["annotations"][SOURCES_ANNOTATION]),
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
            {a: "ghcr.io/org/app", c: "docker.io/library/ubuntu"},
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
            builder,
            ReplayBackend(archive),
            "app",
            build_dir,
            upload_format="oci",
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
