# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""End-to-end tests of `gather`: every archive format, built in code.

For each format the output must be a valid OCI layout (see
`GatherTestCase.assertValidLayout`) holding every image of the archive
with its config byte-exact, its layers compressed (already-compressed
layers byte-exact) and its names and platform in the index.
"""

__all__ = []

import hashlib
import io
import json
import os
import random
import tarfile

import zstandard

from lpbuildd.ociimage.errors import CorruptArchive
from lpbuildd.ociimage.gather import _check_printable, gather
from lpbuildd.ociimage.tests.helpers import GatherTestCase, tree_digests
from lpbuildd.tests.archivebuilder import (
    DOCKER_LAYER_FOREIGN,
    EMPTY_LAYER,
    EMPTY_LAYER_DIFF_ID,
    ESTARGZ_TOC_DIGEST,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    docker25_classic,
    docker25_containerd,
    junk_members_with_byte_names,
    kaniko_tarball,
    legacy_docker_save,
    make_image,
    make_layer,
    oci_archive,
    podman_docker_archive,
    zstd_skippable_frame,
)
from ocitypes.digest import Digest

LAYER_SOURCE = "com.canonical.launchpad.oci.source-repository"


def shared_layer_images():
    """Two images sharing a layer; the first repeats a layer."""
    shared = make_layer(seed=1)
    first = make_image(
        layers=[shared, make_layer(seed=2, size=20000), shared],
        tags=("example.com/app:latest", "example.com/app:1.0"),
    )
    second = make_image(
        layers=[shared, make_layer(seed=3)],
        architecture="arm64",
        variant="v8",
        tags=("busybox:test",),
    )
    return first, second


class TestFormats(GatherTestCase):
    """Each archive format gathers into a complete, valid layout."""

    def check(
        self,
        builder,
        expected_format,
        names=None,
        compression="gzip",
        outer=None,
        via="file",
    ):
        """Gather `builder`'s archive and check every image in it.

        :param names: {config digest: [(image name, ref name), ...]}.
        """
        result, outdir = self.gather(
            builder.to_bytes(outer), via=via, compression=compression
        )
        layout = self.assertValidLayout(outdir)
        self.assertEqual(expected_format, result.format)
        self.assertEqual(len(builder.images), len(layout.images))
        self.assertEqual(len(builder.images), len(result.images))
        for image in builder.images:
            out = layout.by_config(image.config)
            self.assertEqual(
                image.config_digest, out.manifest["config"]["digest"]
            )
            for entry in out.entries:
                self.assertEqual(image.platform, entry["platform"])
            out_diff_ids = json.loads(out.config)["rootfs"]["diff_ids"]
            self.assertEqual(image.diff_ids, out_diff_ids)
            for i, (desc, data) in enumerate(out.layers):
                if image.layer_compression is None:
                    # We compressed it, as asked.
                    self.assertTrue(
                        desc["mediaType"].endswith("+" + compression),
                        desc["mediaType"],
                    )
                else:
                    # Compressed upstream: kept byte-exact.
                    self.assertEqual(image.compressed_layers[i], data)
            if names is not None:
                self.assertEqual(sorted(names[image.config_digest]), out.names)
        return result, layout

    def test_legacy_docker_save(self):
        first, second = shared_layer_images()
        builder = legacy_docker_save([first, second])
        # Repeated layers are symlinks to the first copy.
        self.assertTrue(
            any(builder.get_info(n).issym() for n in builder.names())
        )
        result, layout = self.check(
            builder,
            "docker-save",
            names={
                first.config_digest: [
                    ("example.com/app:latest", "latest"),
                    ("example.com/app:1.0", "1.0"),
                ],
                second.config_digest: [
                    ("docker.io/library/busybox:test", "test"),
                ],
            },
        )
        self.assertEqual(5, result.layer_count)
        # The shared layer is written once.
        digests = [
            desc["digest"]
            for image in layout.images
            for desc, _ in image.layers
        ]
        self.assertEqual(3, len(set(digests)))

    def test_legacy_docker_save_untagged(self):
        image = make_image(tags=())
        result, layout = self.check(
            legacy_docker_save(image),
            "docker-save",
            {image.id: [(None, None)]},
        )
        self.assertEqual([{}], [e.annotations for e in result.index])

    def test_legacy_docker_save_without_symlinks(self):
        first, second = shared_layer_images()
        self.check(
            legacy_docker_save([first, second], duplicate_symlinks=False),
            "docker-save",
        )

    def test_legacy_docker_save_foreign_layer(self):
        # A foreign (Windows) layer has a LayerSources entry and no
        # layer.tar: it is referenced, not uploaded.
        image = make_image(
            layers=[make_layer(seed=1), make_layer(seed=2)],
            layer_compression=None,
        )
        foreign = image.diff_ids[0]
        builder = legacy_docker_save(image, layer_sources={foreign: True})
        self.assertNotIn(
            builder.info["v1_ids"][0][0] + "/layer.tar", builder.names()
        )
        result, outdir = self.gather(builder.to_bytes())
        layout = self.assertValidLayout(outdir)
        (out,) = layout.images
        (desc, data), (local_desc, local_data) = out.layers
        self.assertIsNone(data)
        self.assertEqual(DOCKER_LAYER_FOREIGN, desc["mediaType"])
        self.assertEqual(image.layer_digests[0], desc["digest"])
        self.assertTrue(desc["urls"][0].startswith("https://"))
        self.assertFalse(
            os.path.exists(
                os.path.join(outdir, "blobs", "sha256", desc["digest"][7:])
            )
        )
        self.assertEqual(OCI_LAYER_GZIP, local_desc["mediaType"])

    def test_podman_docker_archive(self):
        first, second = shared_layer_images()
        self.check(
            podman_docker_archive([first, second]),
            "docker-archive",
            names={
                first.config_digest: [
                    ("example.com/app:latest", "latest"),
                    ("example.com/app:1.0", "1.0"),
                ],
                second.config_digest: [
                    ("docker.io/library/busybox:test", "test"),
                ],
            },
        )

    def test_kaniko_tarball(self):
        image = make_image(
            layers=[make_layer(seed=1), make_layer(seed=2)],
            tags=("registry.example.com:5000/team/app:v2",),
        )
        builder = kaniko_tarball(image)
        self.check(
            builder,
            "kaniko",
            {
                builder.images[0].id: [
                    ("registry.example.com:5000/team/app:v2", "v2")
                ]
            },
        )

    def test_docker25_classic(self):
        first, second = shared_layer_images()
        for version in ("25.0.3", "26.1", "27.0", "28.0"):
            builder = docker25_classic([first, second], version=version)
            result, layout = self.check(
                builder,
                "docker25-classic",
                {
                    first.config_digest: [
                        ("example.com/app:latest", "latest"),
                        ("example.com/app:1.0", "1.0"),
                    ],
                    second.config_digest: [
                        ("docker.io/library/busybox:test", "test"),
                    ],
                },
            )
            # The legacy v1 JSON blobs are not referenced: dropped.
            layers = {d["digest"] for i in layout.images for d, _ in i.layers}
            blobs = os.listdir(os.path.join(result.outdir, "blobs", "sha256"))
            self.assertEqual(len(layers) + 4, len(blobs))

    def test_docker25_0_0_shuffled_layers(self):
        image = make_image(layers=[make_layer(seed=i) for i in range(5)])
        builder = docker25_classic(image, version="25.0.0")
        manifest = json.loads(
            builder.get(builder.blob_name(builder.info["manifest_digests"][0]))
        )
        self.assertNotEqual(
            image.diff_ids, [d["digest"] for d in manifest["layers"]]
        )
        result, layout = self.check(builder, "docker25-classic")
        # Put back in the config's order, in a manifest of our own.
        self.assertNotEqual(
            builder.info["manifest_digests"][0], result.index[0].digest
        )

    def test_docker25_0_0_repeated_layer(self):
        # 25.0.0 built the OCI manifest from a map, so a layer that
        # appears twice in the image appears once there; manifest.json
        # and the config still list it twice.
        layer = make_layer(seed=1)
        image = make_image(layers=[layer, make_layer(seed=2), layer])
        builder = docker25_classic(image, version="25.0.0")
        result, layout = self.check(builder, "docker25-classic")
        self.assertEqual(3, result.layer_count)

    def test_docker25_0_0_null_manifests(self):
        image = make_image(tags=())
        builder = docker25_classic(image, version="25.0.0")
        self.assertIsNone(json.loads(builder.get("index.json"))["manifests"])
        result, layout = self.check(builder, "docker25-classic")
        self.assertEqual([{}], [e.annotations for e in result.index])

    def test_docker25_multi_image_one_index_entry(self):
        # moby #51389: untagged images after the first are missing from
        # index.json; manifest.json has them all.
        first = make_image(layers=[make_layer(seed=1)], tags=())
        second = make_image(layers=[make_layer(seed=2)], tags=())
        builder = docker25_classic([first, second], version="27.0")
        self.assertEqual(
            1, len(json.loads(builder.get("index.json"))["manifests"])
        )
        self.check(builder, "docker25-classic")

    def test_docker25_containerd(self):
        image = make_image(
            layers=[make_layer(seed=1), EMPTY_LAYER],
            tags=("busybox:latest",),
        )
        for media_types in ("docker", "oci", "mixed"):
            for layer_compression in ("gzip", "zstd"):
                builder = docker25_containerd(
                    image,
                    other_platforms=("arm64", "arm/v7"),
                    media_types=media_types,
                    layer_compression=layer_compression,
                )
                result, layout = self.check(
                    builder,
                    "docker25-containerd",
                    {
                        builder.images[0].id: [
                            ("docker.io/library/busybox:latest", "latest")
                        ]
                    },
                )
                (out,) = layout.images
                source_manifest = builder.get(
                    builder.blob_name(builder.info["manifest_digest"])
                )
                source_type = json.loads(source_manifest).get("mediaType")
                if source_type == OCI_MANIFEST:
                    # An OCI source manifest is kept byte-exact.
                    self.assertEqual(
                        builder.info["manifest_digest"], out.manifest_digest
                    )
                    self.assertEqual(source_manifest, out.manifest_bytes)
                else:
                    # A Docker schema 2 one is rewritten as OCI.
                    self.assertNotEqual(
                        builder.info["manifest_digest"], out.manifest_digest
                    )
                expected_type = OCI_MANIFEST
                self.assertEqual(expected_type, out.entries[0]["mediaType"])
                # Other platforms (blobs absent) and attestations dropped.
                self.assertEqual(5, len(result.dropped))
                self.assertIn("linux/arm64", " ".join(result.dropped))

    def test_docker25_containerd_attestation_present(self):
        builder = docker25_containerd(
            make_image(), other_platforms=(), attestation_blobs=True
        )
        result, layout = self.check(builder, "docker25-containerd")
        self.assertEqual(1, len(layout.images))
        self.assertIn("attestation", " ".join(result.dropped))

    def test_docker25_containerd_index_media_type(self):
        builder = docker25_containerd(make_image(), index_media_type=True)
        self.check(builder, "docker25-containerd")

    def test_oci_archive(self):
        first, second = shared_layer_images()
        for layer_compression in (None, "gzip", "zstd", "estargz"):
            builder = oci_archive(
                [first, second], layer_compression=layer_compression
            )
            self.check(
                builder,
                "oci",
                {i.id: [(None, "latest")] for i in builder.images},
            )

    def test_oci_archive_estargz_annotations_kept(self):
        builder = oci_archive(make_image(), layer_compression="estargz")
        result, layout = self.check(builder, "oci")
        (out,) = layout.images
        # The manifest is kept as it came, TOC annotations included.
        self.assertEqual(
            builder.info["manifest_digests"][0], out.manifest_digest
        )
        self.assertIn(
            ESTARGZ_TOC_DIGEST, out.layers[0][0].get("annotations", {})
        )

    def test_oci_archive_full_reference(self):
        builder = oci_archive(
            make_image(), ref_name="registry.example.com/team/app:1.0"
        )
        self.check(
            builder,
            "oci",
            {
                builder.images[0].id: [
                    ("registry.example.com/team/app:1.0", "1.0")
                ]
            },
        )

    def test_oci_archive_no_ref_name_no_media_type_no_platform(self):
        builder = oci_archive(
            make_image(),
            ref_name=None,
            index_media_type=False,
            platform=False,
        )
        result, layout = self.check(builder, "oci")
        # The platform comes from the config instead.
        self.assertEqual(
            {"architecture": "amd64", "os": "linux"},
            layout.images[0].entries[0]["platform"],
        )

    def test_outer_compression(self):
        first, second = shared_layer_images()
        for outer in ("gzip", "xz", "zstd"):
            self.check(
                legacy_docker_save([first, second]),
                "docker-save+" + outer,
                outer=outer,
            )
            self.check(
                docker25_classic(first),
                "docker25-classic+" + outer,
                outer=outer,
            )

    def test_outer_zstd_with_skippable_frames(self):
        # Docker reads a zstd stream that starts with a skippable frame.
        data = docker25_classic(make_image()).to_bytes()
        frames = zstandard.ZstdCompressor().compress(data)
        stream = zstd_skippable_frame() + frames + zstd_skippable_frame()
        result, outdir = self.gather(stream)
        self.assertEqual("docker25-classic+zstd", result.format)
        self.assertValidLayout(outdir)

    def test_empty_layer(self):
        image = make_image(layers=[EMPTY_LAYER, make_layer(seed=1)])
        self.assertEqual(EMPTY_LAYER_DIFF_ID, image.diff_ids[0])
        for builder, expected_format in (
            (legacy_docker_save(image), "docker-save"),
            (docker25_classic(image), "docker25-classic"),
            (oci_archive(image, layer_compression=None), "oci"),
            (oci_archive(image, layer_compression="gzip"), "oci"),
        ):
            self.check(builder, expected_format)

    def test_zstd_output(self):
        first, second = shared_layer_images()
        for builder, expected_format in (
            (legacy_docker_save([first, second]), "docker-save"),
            (docker25_classic([first, second]), "docker25-classic"),
        ):
            result, layout = self.check(
                builder, expected_format, compression="zstd"
            )
            for image in layout.images:
                for desc, _ in image.layers:
                    self.assertEqual(OCI_LAYER_ZSTD, desc["mediaType"])

    def test_unreferenced_blobs_dropped(self):
        builder = oci_archive(make_image())
        builder.add_file("blobs/sha256/" + "ab" * 32, b"not referenced")
        builder.add_file("._junk", b"\0\5\26\7 macOS")
        builder.sort()
        result, outdir = self.gather(builder.to_bytes())
        self.assertValidLayout(outdir)
        self.assertFalse(
            os.path.exists(os.path.join(outdir, "blobs", "sha256", "ab" * 32))
        )

    def test_junk_members_with_names_that_are_not_utf8(self):
        # Tar names are bytes; a member no image refers to is junk,
        # whatever its name.  Before: "the member name of the header at
        # offset 0 is not UTF-8" refused the sound archive.
        image = make_image(layers=[make_layer(seed=1), make_layer(seed=2)])
        for builder in (
            docker25_classic([image]),
            oci_archive(image),
            legacy_docker_save([image]),
        ):
            data = junk_members_with_byte_names() + builder.to_bytes()
            for via in ("file", "pipe"):
                result, outdir = self.gather(data, via=via)
                layout = self.assertValidLayout(outdir)
                self.assertEqual(1, len(layout.images))

    def test_layer_sources(self):
        image = make_image(layers=[make_layer(seed=1), make_layer(seed=2)])
        sources = {Digest.parse(image.diff_ids[1]): "ubuntu/base"}
        result, outdir = self.gather(
            legacy_docker_save(image).to_bytes(), sources=sources
        )
        (out,) = self.assertValidLayout(outdir).images
        self.assertEqual(
            [None, "ubuntu/base"],
            [
                d.get("annotations", {}).get(LAYER_SOURCE)
                for d, _ in out.layers
            ],
        )

    def test_progress(self):
        seen = []
        data = legacy_docker_save(make_image()).to_bytes()
        result, outdir = self.gather(
            data, progress=lambda *args: seen.append(args)
        )
        self.assertEqual([("gather", len(data), len(data))], seen)
        self.assertEqual(len(data), result.bytes_in)
        self.assertTrue(result.bytes_out > 0)


class TestDeterminism(GatherTestCase):
    """The same archive always gives the same output, however read."""

    def archives(self):
        # Layers bigger than the compressor's 1 MiB block, so that
        # several threads really share the work with jobs=2.
        big = make_image(
            layers=[make_layer(seed=5, size=3 << 20), make_layer(seed=6)]
        )
        first, second = shared_layer_images()
        return {
            "legacy": legacy_docker_save([big, second]).to_bytes(),
            "docker25": docker25_classic(first).to_bytes("gzip"),
            "containerd": docker25_containerd(first).to_bytes(),
            "oci-zstd": oci_archive(
                second, layer_compression="zstd"
            ).to_bytes(),
        }

    def test_same_output_every_time(self):
        for name, data in self.archives().items():
            trees = []
            for kwargs in (
                dict(jobs=1),
                dict(jobs=1),
                dict(jobs=2),
                dict(jobs=2, via="pipe"),
                dict(jobs=1, via="subprocess"),
            ):
                result, outdir = self.gather(data, **kwargs)
                trees.append(tree_digests(outdir))
            for tree in trees[1:]:
                self.assertEqual(trees[0], tree, name)

    def test_zstd_same_output_every_time(self):
        big = make_image(layers=[make_layer(seed=5, size=3 << 20)])
        data = legacy_docker_save(big).to_bytes()
        trees = [
            tree_digests(self.gather(data, jobs=jobs, compression="zstd")[1])
            for jobs in (1, 2, 2)
        ]
        self.assertEqual(trees[0], trees[1])
        self.assertEqual(trees[0], trees[2])

    def test_pipe_matches_file_for_every_format(self):
        first, second = shared_layer_images()
        for builder in (
            legacy_docker_save([first, second]),
            podman_docker_archive(first),
            kaniko_tarball(second),
            docker25_classic([first, second], version="25.0.0"),
            docker25_containerd(first),
            oci_archive(first, layer_compression="estargz"),
        ):
            for outer in (None, "gzip"):
                data = builder.to_bytes(outer)
                from_file = tree_digests(self.gather(data)[1])
                from_pipe = tree_digests(self.gather(data, via="pipe")[1])
                self.assertEqual(from_file, from_pipe)

    def test_default_jobs(self):
        data = legacy_docker_save(make_image()).to_bytes()
        path = self.write_archive(data)
        outdir = self.new_outdir()
        result = gather(path, outdir)
        self.assertEqual(os.path.abspath(outdir), result.outdir)
        self.assertEqual(
            tree_digests(outdir), tree_digests(self.gather(data, jobs=1)[1])
        )


def random_layer(seed, size):
    """A layer holding `size` incompressible bytes."""
    rng = random.Random(seed)
    return make_layer(files={f"random-{seed}.bin": rng.randbytes(size)})


def member_ranges(data):
    """{member name: (data offset, size)} of a tar archive's files."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (m.offset_data, m.size) for m in tar if m.isfile()}


class TestLargeLayers(GatherTestCase):
    """Layers larger than a document: from a file, read by parallel
    workers where they lie; from a pipe, inflated and hashed in threads
    of their own.  Either way, the same output and the same errors."""

    def images(self):
        # Over MAX_JSON_SIZE each, compressed or not.
        return make_image(
            layers=[
                random_layer(1, 5 << 20),
                make_layer(seed=2),
                random_layer(3, 6 << 20),
                make_layer(seed=4, size=9 << 20),
            ]
        )

    def archives(self):
        image = self.images()
        return {
            "legacy": legacy_docker_save(image).to_bytes(),
            "oci-gzip": oci_archive(image, layer_compression="gzip"),
            "oci-zstd": oci_archive(image, layer_compression="zstd"),
        }

    def test_file_and_pipe_agree(self):
        for name, archive in self.archives().items():
            data = (
                archive if isinstance(archive, bytes) else archive.to_bytes()
            )
            trees = []
            for kwargs in (
                dict(jobs=1),
                dict(jobs=3),
                dict(jobs=2, via="pipe"),
            ):
                result, outdir = self.gather(data, **kwargs)
                self.assertValidLayout(outdir)
                self.assertEqual(len(data), result.bytes_in)
                trees.append(tree_digests(outdir))
            self.assertEqual(trees[0], trees[1], name)
            self.assertEqual(trees[0], trees[2], name)

    def corrupt(self, data, name, position):
        """`data` with one byte of member `name` flipped."""
        offset, size = member_ranges(data)[name]
        at = offset + position % size
        return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]

    def test_corrupt_layer_refused_from_file_and_pipe(self):
        archive = oci_archive(self.images(), layer_compression="gzip")
        data = archive.to_bytes()
        ranges = member_ranges(data)
        big = [n for n, (_, size) in ranges.items() if size > 4 << 20]
        self.assertEqual(2, len(big))
        for name in big:
            # The gzip trailer (CRC, size) of each large layer.
            bad = self.corrupt(data, name, -6)
            for via in ("file", "pipe"):
                self.assertRefused(
                    bad, CorruptArchive, f"layer {name!r}", via=via, jobs=2
                )

    def test_first_failing_layer_reported(self):
        # Both large layers corrupt: the first in archive order is named,
        # however the workers finish.
        archive = oci_archive(self.images(), layer_compression="gzip")
        data = archive.to_bytes()
        ranges = member_ranges(data)
        big = sorted(
            (offset, n)
            for n, (offset, size) in ranges.items()
            if size > 4 << 20
        )
        for _, name in big:
            data = self.corrupt(data, name, -6)
        for via in ("file", "pipe"):
            for jobs in (1, 2):
                self.assertRefused(
                    data,
                    CorruptArchive,
                    f"layer {big[0][1]!r}",
                    via=via,
                    jobs=jobs,
                )

    def test_truncated_inside_a_large_layer(self):
        data = legacy_docker_save(self.images()).to_bytes()
        offset, size = max(member_ranges(data).values(), key=lambda r: r[1])
        cut = data[: offset + size // 2]
        for via in ("file", "pipe"):
            self.assertRefused(
                cut,
                CorruptArchive,
                f"ends {size - size // 2} bytes early",
                via=via,
            )

    def test_layer_named_twice(self):
        image = make_image(layers=[random_layer(1, 5 << 20)])
        data = legacy_docker_save(image).to_bytes()
        ranges = member_ranges(data)
        name = max(ranges, key=lambda n: ranges[n][1])
        offset, size = ranges[name]
        end = max(-(-(o + n) // 512) * 512 for o, n in ranges.values())
        # The large layer's header and data again, then the end.
        again = data[offset - 512 : -(-(offset + size) // 512) * 512]
        twice = data[:end] + again + bytes(1024)
        for via in ("file", "pipe"):
            self.assertRefused(
                twice, CorruptArchive, f"{name!r} appears twice", via=via
            )

    def test_progress_inside_a_large_member(self):
        # Reported every MiB read, whichever thread reads, so that a
        # display can move while one large layer is read.
        for name, archive in self.archives().items():
            data = (
                archive if isinstance(archive, bytes) else archive.to_bytes()
            )
            for via, total in (("file", len(data)), ("pipe", None)):
                seen = []
                self.gather(
                    data,
                    via=via,
                    jobs=2,
                    progress=lambda *args: seen.append(args),
                )
                self.assertEqual(
                    {("gather", total)}, {(p, t) for p, _, t in seen}
                )
                done = [d for _, d, _ in seen]
                self.assertEqual(sorted(done), done)
                self.assertEqual(len(data), done[-1])
                # Every MiB, not every member (there are seven).
                self.assertGreaterEqual(len(done), len(data) >> 20, via)


class TestCheckPrintable(GatherTestCase):
    """The last check before commit: whatever the resolver let through,
    nothing unprintable reaches the summary."""

    def test_unprintable_refused(self):
        result, outdir = self.gather(docker25_classic(make_image()).to_bytes())
        image = result.images[0]
        _check_printable([image], ["sha256:abc: not in the archive"])
        for names, dropped in (
            ([("docker.io/x\n", "t")], []),
            ([("r", "\ud800")], []),
            ([], ["x\x1b[2J"]),
            ([], ["caf\u00e9"]),
        ):
            bad = image.with_names(names)
            e = self.assertRaises(
                CorruptArchive, _check_printable, [bad], dropped
            )
            self.assertTrue(str(e).isprintable())


class TestSHA1(GatherTestCase):
    """`gather(sha1=True)` names every layer blob's SHA-1 as written."""

    def images(self):
        rng = random.Random(7)
        big = make_layer({"big": rng.randbytes(5 * 1024 * 1024)})
        return docker25_classic(
            [
                make_image(layers=[big, make_layer(seed=1)]),
                make_image(
                    layers=[make_layer(seed=2)], layer_compression="gzip"
                ),
            ]
        )

    def test_every_layer_blob_gets_its_sha1(self):
        for via in ("file", "pipe"):
            result, outdir = self.gather(
                self.images().to_bytes(), via=via, sha1=True
            )
            layers = {
                f"blobs/sha256/{layer.descriptor.digest.hex}"
                for image in result.images
                for layer in image.layers
            }
            self.assertEqual(layers, set(result.sha1s))
            for relpath, sha1 in result.sha1s.items():
                with open(os.path.join(outdir, relpath), "rb") as f:
                    self.assertEqual(hashlib.sha1(f.read()).hexdigest(), sha1)

    def test_not_computed_unless_asked(self):
        # `lp-oci gather` alone files nothing: it pays for no SHA-1.
        result, _ = self.gather(self.images().to_bytes())
        self.assertEqual({}, result.sha1s)
        for image in result.images:
            for layer in image.layers:
                self.assertIsNone(layer.blob.out_sha1)
