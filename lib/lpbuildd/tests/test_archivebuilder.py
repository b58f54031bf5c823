# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the in-code image archive builder.

Besides checking each layout against FORMATS.md, these tests ask skopeo
(when installed) to read the archives: that proves the builder makes
archives a real tool accepts, not just archives our reader accepts.
"""

__all__ = []

import gzip
import io
import json
import lzma
import os.path
import shutil
import subprocess
import tarfile
import tempfile

import zstandard
from fixtures import TempDir
from testtools import TestCase

from lpbuildd.tests.archivebuilder import (
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    EMPTY_LAYER,
    EMPTY_LAYER_DIFF_ID,
    ESTARGZ_TOC_DIGEST,
    ESTARGZ_UNCOMPRESSED_SIZE,
    MALFORMED_DIGESTS,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    ArchiveBuilder,
    Image,
    LayerFile,
    big_json,
    corrupt_member,
    deep_json,
    diff_id_mismatch_archive,
    docker25_classic,
    docker25_containerd,
    gzip_bomb,
    index_cycle_archive,
    kaniko_tarball,
    legacy_docker_save,
    link_escape_archive,
    make_image,
    make_layer,
    malformed_digest_archive,
    nested_index_archive,
    oci_archive,
    pax_record,
    podman_docker_archive,
    pre_1_10_save,
    raw_tar,
    raw_tar_header,
    replace_blob,
    sha256_digest,
    size_mismatch_archive,
    symlink_cycle_archive,
    traversal_manifest_archive,
    xz_with_dictionary,
    zstd_bomb,
    zstd_skippable_frame,
)
from ocitypes.testing import tool_missing


def read_tar(data):
    """Return {name: (TarInfo, bytes)} and the ordered names."""
    members = {}
    names = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for info in tar:
            content = tar.extractfile(info).read() if info.isfile() else b""
            members[info.name] = (info, content)
            names.append(info.name)
    return members, names


def blob(members, digest):
    return members["blobs/sha256/" + digest.split(":")[1]][1]


def two_images():
    shared = make_layer(seed=1)
    first = make_image(
        layers=[shared, make_layer(seed=2, size=20000), shared, EMPTY_LAYER],
        tags=("example.com/app:latest", "example.com/app:1.0"),
    )
    second = make_image(
        layers=[shared, make_layer(seed=3)],
        architecture="arm64",
        tags=("busybox:test",),
    )
    return first, second


class TestLayersAndImages(TestCase):
    def test_empty_layer(self):
        self.assertEqual(EMPTY_LAYER_DIFF_ID, sha256_digest(EMPTY_LAYER))
        self.assertEqual(b"\0" * 1024, EMPTY_LAYER)

    def test_make_layer_deterministic_and_sorted(self):
        layer = make_layer({"b": b"2", "a/": None, "a/c": b"3"}, seed=4)
        self.assertEqual(
            layer, make_layer({"a/c": b"3", "b": b"2", "a/": None})
        )
        with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
            infos = tar.getmembers()
        self.assertEqual(["a", "a/c", "b"], [i.name for i in infos])
        self.assertTrue(all(i.mtime == 0 and i.uid == 0 for i in infos))
        self.assertNotEqual(make_layer(seed=1), make_layer(seed=2))

    def test_make_layer_size(self):
        layer = make_layer(size=300000, seed=7)
        self.assertTrue(300000 <= len(layer) < 320000)
        self.assertEqual(layer, make_layer(size=300000, seed=7))
        # Compressible but not trivially so.
        ratio = len(gzip.compress(layer)) / len(layer)
        self.assertTrue(0.05 < ratio < 0.6, ratio)

    def test_image(self):
        layers = [make_layer(seed=1), EMPTY_LAYER]
        image = make_image(layers=layers, variant="v8", architecture="arm64")
        config = json.loads(image.config)
        self.assertEqual(layers, image.layers)
        self.assertEqual(image.diff_ids, config["rootfs"]["diff_ids"])
        self.assertEqual(EMPTY_LAYER_DIFF_ID, image.diff_ids[1])
        self.assertEqual(sha256_digest(image.config), image.config_digest)
        self.assertEqual(
            {"architecture": "arm64", "os": "linux", "variant": "v8"},
            image.platform,
        )
        self.assertEqual(image.layers, image.compressed_layers)
        self.assertEqual(("example.com/app:latest",), image.tags)

    def test_compressed_image(self):
        image = make_image(layer_compression="gzip")
        self.assertEqual(
            image.layers[0], gzip.decompress(image.compressed_layers[0])
        )
        self.assertEqual(
            sha256_digest(image.compressed_layers[0]), image.layer_digests[0]
        )
        zimage = image.with_compression("zstd")
        self.assertEqual(image.diff_ids, zimage.diff_ids)
        self.assertEqual(
            image.layers[0],
            zstandard.ZstdDecompressor().decompress(
                zimage.compressed_layers[0]
            ),
        )
        self.assertEqual([OCI_LAYER_ZSTD], zimage.layer_media_types())

    def test_estargz(self):
        image = make_image(
            layers=[make_layer({"a": b"1", "b": b"2"})],
            layer_compression="estargz",
        )
        layer_blob = image.compressed_layers[0]
        self.assertEqual(image.layers[0], gzip.decompress(layer_blob))
        self.assertEqual(sha256_digest(image.layers[0]), image.diff_ids[0])
        # Several gzip members: the two files, the TOC, the footer.
        self.assertEqual(4, layer_blob.count(b"\x1f\x8b\x08"))
        self.assertEqual(51, len(layer_blob) - layer_blob.rindex(b"\x1f\x8b"))
        with tarfile.open(fileobj=io.BytesIO(image.layers[0])) as tar:
            self.assertEqual(["a", "b", "stargz.index.json"], tar.getnames())
            toc = tar.extractfile("stargz.index.json").read()
        annotations = image.layer_annotations[0]
        self.assertEqual(sha256_digest(toc), annotations[ESTARGZ_TOC_DIGEST])
        self.assertEqual(
            str(len(image.layers[0])), annotations[ESTARGZ_UNCOMPRESSED_SIZE]
        )


class TestArchiveBuilder(TestCase):
    def make_builder(self):
        builder = ArchiveBuilder()
        builder.add_dir("d/")
        builder.add_file("d/f", b"data", mode=0o600)
        builder.add_symlink("s", "d/f")
        builder.add_hardlink("h", "d/f")
        return builder

    def test_members(self):
        members, names = read_tar(self.make_builder().to_bytes())
        self.assertEqual(["d", "d/f", "s", "h"], names)
        self.assertTrue(members["d"][0].isdir())
        self.assertEqual((0o600, b"data"), (members["d/f"][0].mode, b"data"))
        self.assertEqual("d/f", members["s"][0].linkname)
        self.assertTrue(members["s"][0].issym())
        self.assertTrue(members["h"][0].islnk())

    def test_mutations(self):
        builder = self.make_builder()
        builder.replace("d/f", b"longer data")
        builder.rename("s", "../escape")
        builder.move_to_end("d")
        builder.remove("h")
        info = tarfile.TarInfo("/abs")
        info.size = 3
        builder.add_raw(info, b"raw")
        self.assertEqual(["d/f", "../escape", "d", "/abs"], builder.names())
        self.assertEqual(b"longer data", builder.get("d/f"))
        self.assertIn("d/", builder)
        self.assertRaises(KeyError, builder.get, "h")
        members, names = read_tar(builder.to_bytes())
        self.assertEqual(["d/f", "../escape", "d", "/abs"], names)
        self.assertEqual(b"raw", members["/abs"][1])

    def test_compression_and_determinism(self):
        builder = self.make_builder()
        plain = builder.to_bytes()
        self.assertEqual(plain, self.make_builder().to_bytes())
        self.assertEqual(plain, gzip.decompress(builder.to_bytes("gzip")))
        self.assertEqual(plain, lzma.decompress(builder.to_bytes("xz")))
        self.assertEqual(
            plain,
            zstandard.ZstdDecompressor().decompress(builder.to_bytes("zstd")),
        )
        path = builder.write(
            os.path.join(self.make_tempdir(), "a.tar.gz"), "gzip"
        )
        with tarfile.open(path) as tar:
            self.assertEqual(["d", "d/f", "s", "h"], tar.getnames())

    def make_tempdir(self):
        path = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, path)
        return path

    def test_truncated(self):
        builder = self.make_builder()
        self.assertEqual(builder.to_bytes()[:700], builder.truncated(700))
        self.assertEqual(builder.to_bytes()[:-1500], builder.truncated(-1500))
        # Cut inside d/f's content: reading the archive fails.
        data = builder.truncated(1028)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            self.assertRaises(tarfile.ReadError, tar.getmembers)


class TestLayerFiles(TestCase):
    """Layers held in files give the same archives as layers in memory."""

    def layerFile(self, directory, name, data):
        path = os.path.join(directory, name)
        with open(path, "wb") as f:
            f.write(data)
        return LayerFile(path, sha256_digest(data), len(data))

    def test_every_format_the_same_bytes(self):
        directory = self.useFixture(TempDir()).path
        layers = [make_layer(seed=1), make_layer(seed=2, size=200000)]
        in_memory = make_image(layers)
        gzipped = in_memory.with_compression("gzip")
        files = [
            self.layerFile(directory, "layer%d" % i, layer)
            for i, layer in enumerate(layers)
        ]
        gzip_files = [
            self.layerFile(directory, "layer%d.gz" % i, blob)
            for i, blob in enumerate(gzipped.compressed_layers)
        ]
        in_files = Image(files)
        gzip_in_files = Image(
            files, layer_compression="gzip", compressed_layers=gzip_files
        )
        self.assertEqual(in_memory.config, in_files.config)
        self.assertEqual(gzipped.layer_digests, gzip_in_files.layer_digests)
        for make_archive, memory, on_disk in (
            (legacy_docker_save, in_memory, in_files),
            (docker25_classic, in_memory, in_files),
            (podman_docker_archive, in_memory, in_files),
            (oci_archive, gzipped, gzip_in_files),
        ):
            expected = make_archive([memory]).to_bytes()
            archive = make_archive([on_disk])
            self.assertEqual(expected, archive.to_bytes())
            path = archive.write(os.path.join(directory, "archive.tar"))
            with open(path, "rb") as f:
                self.assertEqual(expected, f.read(), make_archive.__name__)

    def test_cannot_recompress(self):
        directory = self.useFixture(TempDir()).path
        image = Image([self.layerFile(directory, "layer", make_layer())])
        self.assertRaises(ValueError, image.with_compression, "gzip")


class TestFormats(TestCase):
    def test_legacy_docker_save(self):
        first, second = two_images()
        builder = legacy_docker_save([first, second])
        self.assertEqual([first, second], builder.images)
        members, names = read_tar(builder.to_bytes())
        manifest = json.loads(members["manifest.json"][1])
        self.assertEqual(2, len(manifest))
        self.assertEqual(
            first.config_digest.split(":")[1] + ".json", manifest[0]["Config"]
        )
        self.assertEqual(list(first.tags), manifest[0]["RepoTags"])
        ids = builder.info["v1_ids"]
        self.assertEqual(
            [i + "/layer.tar" for i in ids[0]], manifest[0]["Layers"]
        )
        # First occurrence is a file, repeats are symlinks, also across
        # images; a shared chain shares the directory.
        self.assertTrue(members[ids[0][0] + "/layer.tar"][0].isfile())
        dup = members[ids[0][2] + "/layer.tar"][0]
        self.assertTrue(dup.issym())
        self.assertEqual("../%s/layer.tar" % ids[0][0], dup.linkname)
        self.assertEqual(ids[0][0], ids[1][0])
        self.assertEqual(b"1.0", members[ids[0][1] + "/VERSION"][1])
        doc = json.loads(members[ids[0][1] + "/json"][1])
        self.assertEqual((ids[0][1], ids[0][0]), (doc["id"], doc["parent"]))
        self.assertEqual(
            {
                "example.com/app": {"latest": ids[0][-1], "1.0": ids[0][-1]},
                "busybox": {"test": ids[1][-1]},
            },
            json.loads(members["repositories"][1]),
        )
        self.assertEqual(["manifest.json", "repositories"], names[-2:])
        self.assertNotIn("LayerSources", manifest[0])

    def test_legacy_untagged_no_symlinks(self):
        image = make_image(layers=[EMPTY_LAYER, EMPTY_LAYER], tags=())
        members, _ = read_tar(
            legacy_docker_save(image, duplicate_symlinks=False).to_bytes()
        )
        manifest = json.loads(members["manifest.json"][1])
        self.assertIsNone(manifest[0]["RepoTags"])
        self.assertNotIn("repositories", members)
        for path in manifest[0]["Layers"]:
            self.assertEqual(EMPTY_LAYER, members[path][1])

    def test_legacy_layer_sources(self):
        image = make_image(
            layers=[make_layer(seed=5), make_layer(seed=6)],
            os="windows",
            layer_compression="gzip",
        )
        builder = legacy_docker_save(
            image, layer_sources={image.diff_ids[0]: True}
        )
        members, _ = read_tar(builder.to_bytes())
        manifest = json.loads(members["manifest.json"][1])
        sources = manifest[0]["LayerSources"]
        self.assertEqual([image.diff_ids[0]], list(sources))
        self.assertEqual(
            image.layer_digests[0], sources[image.diff_ids[0]]["digest"]
        )
        self.assertNotIn(manifest[0]["Layers"][0], members)
        self.assertIn(manifest[0]["Layers"][1], members)

    def test_podman_docker_archive(self):
        image = make_image(layers=[EMPTY_LAYER, make_layer()], tags=())
        members, names = read_tar(podman_docker_archive(image).to_bytes())
        self.assertEqual("manifest.json", names[-1])
        manifest = json.loads(members["manifest.json"][1])
        self.assertEqual([], manifest[0]["RepoTags"])
        self.assertEqual(
            [d.split(":")[1] + ".tar" for d in image.diff_ids],
            manifest[0]["Layers"],
        )
        for path in manifest[0]["Layers"]:
            self.assertTrue(members[path][0].isfile())
        links = [n for n in names if n.endswith("/layer.tar")]
        self.assertEqual(2, len(links))
        self.assertTrue(all(members[n][0].issym() for n in links))
        self.assertEqual(b"{}", members["repositories"][1])
        self.assertFalse(any(m[0].isdir() for m in members.values()))

    def test_kaniko_tarball(self):
        image = make_image(layers=[make_layer(seed=1), make_layer(seed=2)])
        builder = kaniko_tarball(image)
        gz = builder.images[0]
        members, names = read_tar(builder.to_bytes())
        self.assertEqual(image.config_digest, names[0])
        self.assertEqual("manifest.json", names[-1])
        manifest = json.loads(members["manifest.json"][1])
        self.assertEqual(image.config_digest, manifest[0]["Config"])
        for path, diff_id in zip(manifest[0]["Layers"], image.diff_ids):
            self.assertTrue(path.endswith(".tar.gz"))
            self.assertEqual(
                diff_id, sha256_digest(gzip.decompress(members[path][1]))
            )
        self.assertEqual(len(names), 4)
        self.assertEqual(
            gz.layer_digests[0].split(":")[1] + ".tar.gz", names[1]
        )

    def test_docker25_classic(self):
        first, second = two_images()
        builder = docker25_classic([first, second])
        members, names = read_tar(builder.to_bytes())
        self.assertEqual(
            ["index.json", "manifest.json", "oci-layout", "repositories"],
            names[-4:],
        )
        self.assertEqual(["blobs", "blobs/sha256"], names[:2])
        manifest = json.loads(members["manifest.json"][1])
        entry = manifest[0]
        self.assertEqual(
            ["blobs/sha256/" + d.split(":")[1] for d in first.diff_ids],
            entry["Layers"],
        )
        self.assertEqual(set(first.diff_ids), set(entry["LayerSources"]))
        for diff_id, source in entry["LayerSources"].items():
            self.assertEqual(OCI_LAYER, source["mediaType"])
            self.assertEqual(diff_id, sha256_digest(blob(members, diff_id)))
        index = json.loads(members["index.json"][1])
        self.assertEqual(OCI_INDEX, index["mediaType"])
        # One entry per tag.
        self.assertEqual(3, len(index["manifests"]))
        annotations = index["manifests"][2]["annotations"]
        self.assertEqual(
            {
                "io.containerd.image.name": "docker.io/library/busybox:test",
                "org.opencontainers.image.ref.name": "test",
            },
            annotations,
        )
        oci = json.loads(blob(members, index["manifests"][0]["digest"]))
        self.assertEqual(OCI_MANIFEST, oci["mediaType"])
        self.assertEqual(first.diff_ids, [d["digest"] for d in oci["layers"]])
        self.assertNotIn("platform", oci["config"])
        self.assertEqual(first.config, blob(members, first.config_digest))
        # Unreferenced legacy v1 JSON blobs are present: 4 + 2 layers,
        # but both images start with the same chain, so one is shared.
        json_blobs = 0
        for name in names:
            if name.startswith("blobs/sha256/") and b'"container_config"' in (
                members[name][1]
            ):
                json_blobs += 1
        self.assertEqual(5, json_blobs)
        repos = json.loads(members["repositories"][1])
        self.assertEqual(
            first.diff_ids[-1].split(":")[1], repos["example.com/app"]["1.0"]
        )

    def test_docker25_0_0_quirks(self):
        layers = [make_layer(seed=i) for i in range(5)] + [make_layer(seed=0)]
        image = make_image(layers=layers, tags=())
        members, _ = read_tar(docker25_classic(image, "25.0.0").to_bytes())
        index = json.loads(members["index.json"][1])
        self.assertIsNone(index["manifests"])
        self.assertNotIn("repositories", members)
        oci = json.loads(
            blob(
                members,
                docker25_classic(image, "25.0.0").info["manifest_digests"][0],
            )
        )
        order = [d["digest"] for d in oci["layers"]]
        self.assertEqual(sorted(set(image.diff_ids)), sorted(order))
        self.assertNotEqual(image.diff_ids[:5], order)
        self.assertEqual(image.platform, oci["config"]["platform"])
        manifest = json.loads(members["manifest.json"][1])
        self.assertEqual(6, len(manifest[0]["Layers"]))

    def test_docker25_multi_untagged_keeps_one_index_entry(self):
        images = [
            make_image(layers=[make_layer(seed=i)], tags=()) for i in (1, 2)
        ]
        members, _ = read_tar(docker25_classic(images, "27.0").to_bytes())
        index = json.loads(members["index.json"][1])
        self.assertEqual(1, len(index["manifests"]))
        self.assertNotIn("annotations", index["manifests"][0])
        self.assertEqual(2, len(json.loads(members["manifest.json"][1])))

    def test_docker25_containerd(self):
        image = make_image(layers=[make_layer(seed=1), make_layer(seed=2)])
        builder = docker25_containerd(image, other_platforms=("arm/v7",))
        gz = builder.images[0]
        members, names = read_tar(builder.to_bytes())
        self.assertEqual(
            ["index.json", "manifest.json", "oci-layout"], names[-3:]
        )
        self.assertEqual(names, sorted(names))
        self.assertNotIn("repositories", members)
        index = json.loads(members["index.json"][1])
        self.assertNotIn("mediaType", index)
        (top,) = index["manifests"]
        self.assertEqual(builder.info["index_digest"], top["digest"])
        self.assertEqual(
            "example.com/app:latest",
            top["annotations"]["io.containerd.image.name"],
        )
        nested = json.loads(blob(members, top["digest"]))
        self.assertEqual(DOCKER_MANIFEST_LIST, nested["mediaType"])
        self.assertEqual(4, len(nested["manifests"]))
        mine, other, att1, att2 = nested["manifests"]
        self.assertEqual(builder.info["manifest_digest"], mine["digest"])
        self.assertEqual(
            {"architecture": "arm", "os": "linux", "variant": "v7"},
            other["platform"],
        )
        self.assertEqual(
            {"architecture": "unknown", "os": "unknown"}, att1["platform"]
        )
        self.assertEqual(
            "attestation-manifest",
            att1["annotations"]["vnd.docker.reference.type"],
        )
        self.assertEqual(
            mine["digest"], att1["annotations"]["vnd.docker.reference.digest"]
        )
        for missing in [other, att1, att2]:
            self.assertNotIn(
                "blobs/sha256/" + missing["digest"].split(":")[1], members
            )
        for missing in builder.info["missing_blobs"]:
            self.assertNotIn("blobs/sha256/" + missing.split(":")[1], members)
        manifest = json.loads(blob(members, mine["digest"]))
        self.assertEqual(DOCKER_MANIFEST, manifest["mediaType"])
        self.assertEqual(
            [DOCKER_LAYER_GZIP] * 2,
            [d["mediaType"] for d in manifest["layers"]],
        )
        for desc, diff_id in zip(manifest["layers"], image.diff_ids):
            data = blob(members, desc["digest"])
            self.assertEqual(desc["size"], len(data))
            self.assertEqual(diff_id, sha256_digest(gzip.decompress(data)))
        (entry,) = json.loads(members["manifest.json"][1])
        self.assertNotIn("LayerSources", entry)
        self.assertEqual(
            ["blobs/sha256/" + d.split(":")[1] for d in gz.layer_digests],
            entry["Layers"],
        )

    def test_docker25_containerd_variants(self):
        image = make_image(tags=("busybox:latest",))
        builder = docker25_containerd(
            image,
            other_platforms=(),
            attestation=False,
            layer_compression="zstd",
            media_types="oci",
            index_media_type=True,
        )
        members, _ = read_tar(builder.to_bytes())
        index = json.loads(members["index.json"][1])
        self.assertEqual(OCI_INDEX, index["mediaType"])
        self.assertEqual(
            "docker.io/library/busybox:latest",
            index["manifests"][0]["annotations"]["io.containerd.image.name"],
        )
        nested = json.loads(blob(members, builder.info["index_digest"]))
        self.assertEqual(OCI_INDEX, nested["mediaType"])
        self.assertEqual(1, len(nested["manifests"]))
        manifest = json.loads(blob(members, builder.info["manifest_digest"]))
        self.assertEqual(OCI_LAYER_ZSTD, manifest["layers"][0]["mediaType"])
        self.assertEqual([], builder.info["missing_blobs"])

    def test_oci_archive(self):
        for compression, media_type in [
            ("gzip", OCI_LAYER_GZIP),
            ("zstd", OCI_LAYER_ZSTD),
            (None, OCI_LAYER),
            ("estargz", OCI_LAYER_GZIP),
        ]:
            image = make_image(layers=[make_layer(seed=1), EMPTY_LAYER])
            builder = oci_archive(image, layer_compression=compression)
            members, names = read_tar(builder.to_bytes())
            self.assertEqual(["index.json", "oci-layout"], names[-2:])
            self.assertNotIn("manifest.json", members)
            index = json.loads(members["index.json"][1])
            (desc,) = index["manifests"]
            self.assertEqual(
                "latest",
                desc["annotations"]["org.opencontainers.image.ref.name"],
            )
            manifest = json.loads(blob(members, desc["digest"]))
            self.assertEqual(
                [media_type] * 2, [d["mediaType"] for d in manifest["layers"]]
            )
            stored = builder.images[0]
            for d, data in zip(manifest["layers"], stored.compressed_layers):
                self.assertEqual(data, blob(members, d["digest"]))
            if compression == "estargz":
                self.assertIn(
                    ESTARGZ_TOC_DIGEST, manifest["layers"][0]["annotations"]
                )

    def test_oci_archive_several_refs(self):
        images = [make_image(layers=[make_layer(seed=i)]) for i in (1, 2)]
        builder = oci_archive(images, ref_name=["example.com/a:1", None])
        members, _ = read_tar(builder.to_bytes())
        first, second = json.loads(members["index.json"][1])["manifests"]
        self.assertEqual(
            "example.com/a:1",
            first["annotations"]["org.opencontainers.image.ref.name"],
        )
        self.assertNotIn("annotations", second)

    def test_pre_1_10_save(self):
        image = make_image(layers=[make_layer(seed=1), make_layer(seed=2)])
        members, names = read_tar(pre_1_10_save(image).to_bytes())
        self.assertNotIn("manifest.json", members)
        self.assertEqual("repositories", names[-1])
        self.assertEqual(9, len(names))
        self.assertFalse(any(n.endswith(".json") for n in names))


class TestHostile(TestCase):
    def test_json_helpers(self):
        self.assertEqual(b"[[[]]]", deep_json(3))
        self.assertRaises(RecursionError, json.loads, deep_json(100000))
        data = big_json(5000, base=[{"Config": "x.json"}])
        self.assertEqual(5000, len(data))
        self.assertEqual("x.json", json.loads(data)[0]["Config"])
        self.assertEqual(100, len(big_json(100)))

    def test_bombs(self):
        bomb = gzip_bomb((64 << 20) + 5, as_tar=True)
        self.assertTrue(len(bomb) < 200000)
        data = gzip.decompress(bomb)
        self.assertEqual((64 << 20) + 5, len(data))
        with tarfile.open(fileobj=io.BytesIO(data[:1024])) as tar:
            self.assertEqual("bomb", tar.next().name)
        self.assertEqual(
            1000, len(gzip.decompress(gzip_bomb(1000, single_member=True)))
        )
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(zstd_bomb((64 << 20) + 7)), read_across_frames=True
        )
        total = 0
        while chunk := reader.read(1 << 22):
            total += len(chunk)
        self.assertEqual((64 << 20) + 7, total)

    def test_big_bombs_are_cheap(self):
        self.assertTrue(len(gzip_bomb(10 << 30)) < 11 << 20)
        self.assertTrue(len(zstd_bomb(10 << 30)) < 1 << 20)

    def test_replace_blob_keeps_references_consistent(self):
        builder = oci_archive(make_image())
        image = builder.images[0]
        other = gzip.compress(make_layer(seed=9), mtime=0)
        new = replace_blob(builder, image.layer_digests[0], other)
        members, _ = read_tar(builder.to_bytes())
        (desc,) = json.loads(members["index.json"][1])["manifests"]
        manifest_bytes = blob(members, desc["digest"])
        self.assertEqual(desc["size"], len(manifest_bytes))
        layer = json.loads(manifest_bytes)["layers"][0]
        self.assertEqual((new, len(other)), (layer["digest"], layer["size"]))
        self.assertNotIn("blobs/sha256/" + image.layer_digests[0][7:], members)

    def test_replace_blob_in_manifest_json(self):
        builder = docker25_containerd(make_image(), other_platforms=())
        gz = builder.images[0]
        other = gzip.compress(make_layer(seed=9), mtime=0)
        new = replace_blob(builder, gz.layer_digests[0], other)
        (entry,) = json.loads(builder.get("manifest.json"))
        self.assertEqual(["blobs/sha256/" + new[7:]], entry["Layers"])

    def test_mismatch_recipes(self):
        members, _ = read_tar(size_mismatch_archive().to_bytes())
        (desc,) = json.loads(members["index.json"][1])["manifests"]
        layer = json.loads(blob(members, desc["digest"]))["layers"][0]
        self.assertEqual(
            layer["size"] - 1, len(blob(members, layer["digest"]))
        )

        builder = diff_id_mismatch_archive()
        members, _ = read_tar(builder.to_bytes())
        (desc,) = json.loads(members["index.json"][1])["manifests"]
        manifest = json.loads(blob(members, desc["digest"]))
        layer = manifest["layers"][0]
        data = blob(members, layer["digest"])
        self.assertEqual(layer["digest"], sha256_digest(data))
        config = json.loads(blob(members, manifest["config"]["digest"]))
        self.assertNotEqual(
            config["rootfs"]["diff_ids"][0],
            sha256_digest(gzip.decompress(data)),
        )

        builder = oci_archive(make_image())
        name = "blobs/sha256/" + builder.images[0].config_digest[7:]
        corrupt_member(builder, name)
        self.assertNotEqual(name[13:], sha256_digest(builder.get(name))[7:])

    def test_malformed_digests(self):
        self.assertIn("sha256:XYZ", MALFORMED_DIGESTS)
        for digest in MALFORMED_DIGESTS:
            for where in ("manifest", "layer"):
                members, _ = read_tar(
                    malformed_digest_archive(digest, where).to_bytes()
                )
                self.assertIn(
                    json.dumps(digest).encode(),
                    members["index.json"][1]
                    + b"".join(m[1] for m in members.values()),
                )

    def test_index_cycle(self):
        builder = index_cycle_archive()
        members, _ = read_tar(builder.to_bytes())
        a = builder.info["a_digest"]
        b = builder.info["b_digest"]
        (top,) = json.loads(members["index.json"][1])["manifests"]
        self.assertEqual(a, top["digest"])
        (to_b,) = json.loads(blob(members, a))["manifests"]
        self.assertEqual(b, to_b["digest"])
        self.assertEqual(to_b["size"], len(blob(members, b)))
        self.assertEqual(sha256_digest(blob(members, b)), b)
        (to_a,) = json.loads(blob(members, b))["manifests"]
        self.assertEqual(
            (a, len(blob(members, a))), (to_a["digest"], to_a["size"])
        )
        builder = index_cycle_archive(self_loop=True)
        a = builder.info["a_digest"]
        (to_a,) = json.loads(builder.get("blobs/sha256/" + a[7:]))["manifests"]
        self.assertEqual(a, to_a["digest"])

    def test_nested_index(self):
        members, _ = read_tar(nested_index_archive(5).to_bytes())
        desc = json.loads(members["index.json"][1])["manifests"][0]
        depth = 0
        while desc["mediaType"] == OCI_INDEX:
            data = blob(members, desc["digest"])
            self.assertEqual(
                (desc["digest"], desc["size"]),
                (sha256_digest(data), len(data)),
            )
            desc = json.loads(data)["manifests"][0]
            depth += 1
        self.assertEqual(5, depth)

    def test_link_recipes(self):
        builder = traversal_manifest_archive("../etc/passwd")
        (entry,) = json.loads(builder.get("manifest.json"))
        self.assertEqual("../etc/passwd", entry["Layers"][0])
        builder = traversal_manifest_archive("/etc/passwd", field="Config")
        self.assertEqual(
            "/etc/passwd",
            json.loads(builder.get("manifest.json"))[0]["Config"],
        )
        members, _ = read_tar(link_escape_archive("../../x").to_bytes())
        links = [m for m, _ in members.values() if m.issym()]
        self.assertEqual(["../../x"], [m.linkname for m in links])
        members, _ = read_tar(
            link_escape_archive("/etc/passwd", hardlink=True).to_bytes()
        )
        links = [m for m, _ in members.values() if m.islnk()]
        self.assertEqual(["/etc/passwd"], [m.linkname for m in links])
        builder = symlink_cycle_archive()
        a, b = builder.info["v1_ids"][0]
        self.assertEqual(
            "../%s/layer.tar" % b, builder.get_info(a + "/layer.tar").linkname
        )
        self.assertEqual(
            "../%s/layer.tar" % a, builder.get_info(b + "/layer.tar").linkname
        )


class TestRawHeaders(TestCase):
    """The hand-made headers are what they claim, to Python's tarfile."""

    def test_raw_tar_header_and_pax_record(self):
        record = pax_record(b"path", b"x" * 95)
        self.assertEqual(len(record), int(record.split(b" ")[0]))
        data = raw_tar(
            (raw_tar_header(b"PaxHeader", len(record), type=b"x"), record),
            (raw_tar_header(b"short", 3), b"abc"),
            (raw_tar_header(b"l", type=b"2", linkname=b"t"), b""),
        )
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            members = tar.getmembers()
            self.assertEqual(["x" * 95, "l"], [m.name for m in members])
            self.assertEqual(b"abc", tar.extractfile(members[0]).read())
            self.assertEqual("t", members[1].linkname)

    def test_bad_checksum_on_request(self):
        header = raw_tar_header(b"f", checksum=1)
        self.assertRaises(
            tarfile.ReadError, tarfile.open, fileobj=io.BytesIO(header)
        )

    def test_xz_with_dictionary(self):
        data = b"hello" * 1000
        self.assertEqual(data, lzma.decompress(xz_with_dictionary(data, 20)))
        self.assertRaises(
            lzma.LZMAError,
            lzma.LZMADecompressor(memlimit=1 << 30).decompress,
            xz_with_dictionary(data, 40),
        )

    def test_zstd_skippable_frame(self):
        frame = zstandard.ZstdCompressor().compress(b"x" * 100)
        data = zstd_skippable_frame(b"abc", 7) + frame
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(data), read_across_frames=True
        )
        self.assertEqual(b"x" * 100, reader.read())


class TestWithSkopeo(TestCase):
    """skopeo reads what we build, and sees the layers we put in."""

    def setUp(self):
        super().setUp()
        if shutil.which("skopeo") is None:
            tool_missing(self, "skopeo is not installed")
        self.tempdir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tempdir)

    def skopeo(self, builder, transport, *args, suffix=""):
        path = os.path.join(self.tempdir, "image.tar")
        builder.write(path)
        output = subprocess.run(
            [
                "skopeo",
                "inspect",
                *args,
                "%s:%s%s" % (transport, path, suffix),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(output)

    def assertDockerArchiveMatches(self, builder, image, suffix=""):
        manifest = self.skopeo(
            builder, "docker-archive", "--raw", suffix=suffix
        )
        self.assertEqual(image.config_digest, manifest["config"]["digest"])
        # skopeo names docker-archive layers by their uncompressed digest.
        self.assertEqual(
            image.diff_ids, [d["digest"] for d in manifest["layers"]]
        )
        config = self.skopeo(
            builder, "docker-archive", "--config", suffix=suffix
        )
        self.assertEqual(image.diff_ids, config["rootfs"]["diff_ids"])
        self.assertEqual(image.architecture, config["architecture"])

    def test_legacy(self):
        first, second = two_images()
        builder = legacy_docker_save([first, second])
        self.assertDockerArchiveMatches(builder, first, ":@0")
        self.assertDockerArchiveMatches(builder, second, ":@1")

    def test_podman(self):
        image = make_image(layers=[make_layer(seed=1), EMPTY_LAYER], tags=())
        self.assertDockerArchiveMatches(podman_docker_archive(image), image)

    def test_docker25_classic(self):
        first, second = two_images()
        for version in ("25.0.0", "26.0", "28.1"):
            builder = docker25_classic([first, second], version)
            self.assertDockerArchiveMatches(builder, second, ":@1")

    def test_oci_archive(self):
        for compression in ("gzip", "zstd", None, "estargz"):
            image = make_image(layers=[make_layer(seed=1), EMPTY_LAYER])
            builder = oci_archive(image, layer_compression=compression)
            stored = builder.images[0]
            info = self.skopeo(builder, "oci-archive", suffix=":latest")
            self.assertEqual(
                builder.info["manifest_digests"][0], info["Digest"]
            )
            self.assertEqual(stored.layer_digests, info["Layers"])
            config = self.skopeo(builder, "oci-archive", "--config")
            self.assertEqual(stored.diff_ids, config["rootfs"]["diff_ids"])


class TestDeterminism(TestCase):
    def test_same_arguments_same_bytes(self):
        def build_all():
            first, second = two_images()
            return [
                legacy_docker_save([first, second]).to_bytes(),
                podman_docker_archive(first).to_bytes(),
                kaniko_tarball(first).to_bytes(),
                docker25_classic([first, second], "25.0.0").to_bytes(),
                docker25_containerd(first).to_bytes(),
                oci_archive(first, "estargz").to_bytes("gzip"),
                pre_1_10_save(first).to_bytes(),
                index_cycle_archive().to_bytes(),
            ]

        self.assertEqual(build_all(), build_all())
