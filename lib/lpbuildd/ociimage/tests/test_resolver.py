# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Hostile and damaged archives that the resolver must refuse.

Each case goes through `gather` end to end and checks the exception
class, that the message names the problem, and that nothing is left at
the output directory or beside it.
"""

__all__ = []

import hashlib
import json

from lpbuildd.ociimage.errors import (
    CorruptArchive,
    DigestMismatch,
    UnsafeArchive,
    UnsupportedArchive,
)
from lpbuildd.ociimage.tests.helpers import GatherTestCase
from lpbuildd.tests.archivebuilder import (
    MALFORMED_DIGESTS,
    big_json,
    corrupt_member,
    deep_json,
    diff_id_mismatch_archive,
    docker25_classic,
    docker25_containerd,
    index_cycle_archive,
    kaniko_tarball,
    legacy_docker_save,
    make_image,
    make_layer,
    malformed_digest_archive,
    nested_index_archive,
    oci_archive,
    pre_1_10_save,
    replace_blob,
    size_mismatch_archive,
    tamper_json,
    traversal_manifest_archive,
)
from ocitypes.errors import MalformedContent
from ocitypes.safejson import MAX_JSON_DEPTH


def _hex(digest):
    return digest.split(":", 1)[1]


class TestManifestPaths(GatherTestCase):
    def test_layer_path_traversal(self):
        for path in ("../etc/passwd", "a/../../etc/passwd", "../../../x"):
            self.assertRefused(
                traversal_manifest_archive(path).to_bytes(),
                UnsafeArchive,
                "escapes the archive",
            )

    def test_config_path_traversal(self):
        self.assertRefused(
            traversal_manifest_archive("../c.json", "Config").to_bytes(),
            UnsafeArchive,
            "manifest.json[0] Config '../c.json' escapes the archive",
        )

    def test_absolute_manifest_path(self):
        self.assertRefused(
            traversal_manifest_archive("/etc/passwd").to_bytes(),
            UnsafeArchive,
            "'/etc/passwd' is an absolute path",
        )

    def test_manifest_path_not_a_string(self):
        builder = legacy_docker_save(make_image())
        tamper_json(
            builder,
            "manifest.json",
            lambda m: m[0]["Layers"].__setitem__(0, {"x": 1}),
        )
        self.assertRefused(
            builder.to_bytes(), CorruptArchive, "layer 0 is not a path"
        )


class TestDigestMismatch(GatherTestCase):
    def test_uncompressed_layer_content(self):
        builder = oci_archive(make_image(), layer_compression=None)
        name = builder.blob_name(builder.images[0].layer_digests[0])
        corrupt_member(builder, name, offset=600)
        self.assertRefused(
            builder.to_bytes(), DigestMismatch, "does not match its digest"
        )

    def test_compressed_layer_content(self):
        # A flipped byte inside a small gzip layer: its digest is
        # checked before any work is spent decompressing it.
        builder = oci_archive(make_image())
        corrupt_member(
            builder, builder.blob_name(builder.images[0].layer_digests[0])
        )
        self.assertRefused(
            builder.to_bytes(), DigestMismatch, "does not match its digest"
        )

    def test_zstd_layer_content(self):
        builder = oci_archive(make_image(), layer_compression="zstd")
        name = builder.blob_name(builder.images[0].layer_digests[0])
        corrupt_member(builder, name)
        error = self.assertRaises(
            CorruptArchive, self.gather, builder.to_bytes()
        )
        self.assertIn(name, str(error))
        self.assertNothingLeft()

    def test_config(self):
        builder = oci_archive(make_image())
        corrupt_member(builder, builder.blob_name(builder.images[0].id))
        self.assertRefused(
            builder.to_bytes(),
            DigestMismatch,
            "config 'blobs/sha256/%s' does not match its digest"
            % _hex(builder.images[0].id),
        )

    def test_manifest(self):
        builder = oci_archive(make_image())
        digest = builder.info["manifest_digests"][0]
        tamper_json(
            builder,
            builder.blob_name(digest),
            lambda m: m.__setitem__("annotations", {"a": "b"}),
        )
        self.assertRefused(
            builder.to_bytes(),
            DigestMismatch,
            "index.json manifests[0] 'blobs/sha256/%s' does not match its "
            "digest" % _hex(digest),
        )

    def test_legacy_config(self):
        image = make_image()
        builder = legacy_docker_save(image)
        corrupt_member(builder, _hex(image.id) + ".json")
        self.assertRefused(
            builder.to_bytes(),
            DigestMismatch,
            "Config '%s.json' does not match its digest" % _hex(image.id),
        )

    def test_docker25_blob_named_by_digest(self):
        # manifest.json paths name blobs/sha256/<hex>: checked too.
        image = make_image(tags=())
        builder = docker25_classic(image, version="25.0.0")
        corrupt_member(builder, builder.blob_name(image.id))
        self.assertRefused(
            builder.to_bytes(), DigestMismatch, "does not match its digest"
        )

    def test_size_mismatch(self):
        for delta in (1, -1, 1000):
            self.assertRefused(
                size_mismatch_archive(delta).to_bytes(),
                DigestMismatch,
                "its descriptor says",
            )

    def test_diff_id_mismatch(self):
        self.assertRefused(
            diff_id_mismatch_archive().to_bytes(),
            DigestMismatch,
            "does not match its diff_id",
        )

    def test_legacy_diff_id_mismatch(self):
        builder = legacy_docker_save(make_image())
        name = builder.info["v1_ids"][0][0] + "/layer.tar"
        corrupt_member(builder, name, offset=600)
        self.assertRefused(
            builder.to_bytes(),
            DigestMismatch,
            "layer 0 '%s' does not match its diff_id" % name,
        )

    def test_kaniko_diff_id_mismatch(self):
        builder = kaniko_tarball(make_image())
        image = builder.images[0]
        name = _hex(image.layer_digests[0]) + ".tar.gz"
        other = make_image(
            layers=[make_layer(seed=42)], layer_compression="gzip"
        )
        builder.replace(name, other.compressed_layers[0])
        self.assertRefused(
            builder.to_bytes(), DigestMismatch, "does not match its"
        )

    def test_layer_count(self):
        builder = legacy_docker_save(make_image())
        tamper_json(builder, "manifest.json", lambda m: m[0]["Layers"].clear())
        self.assertRefused(
            builder.to_bytes(),
            CorruptArchive,
            "manifest.json[0] has 0 layers but its config lists 1 diff_ids",
        )

    def test_docker25_0_0_missing_layer(self):
        # The repeated-layer repair does not hide a layer that is gone.
        layers = [make_layer(seed=1), make_layer(seed=2), make_layer(seed=1)]
        image = make_image(layers=layers, tags=())
        builder = docker25_classic(image, version="25.0.3")
        manifest = json.loads(
            builder.get(builder.blob_name(builder.info["manifest_digests"][0]))
        )
        del manifest["layers"][1]
        replace_blob(
            builder,
            builder.info["manifest_digests"][0],
            json.dumps(manifest).encode(),
        )
        self.assertRefused(
            builder.to_bytes(),
            CorruptArchive,
            "has 2 layers but its config lists 3 diff_ids",
        )


class TestMissing(GatherTestCase):
    def test_missing_layer(self):
        builder = oci_archive(make_image())
        digest = builder.images[0].layer_digests[0]
        builder.remove(builder.blob_name(digest))
        self.assertRefused(
            builder.to_bytes(),
            CorruptArchive,
            "layer 0 (%s) is missing" % digest,
        )

    def test_missing_config(self):
        builder = oci_archive(make_image())
        builder.remove(builder.blob_name(builder.images[0].id))
        self.assertRefused(
            builder.to_bytes(),
            CorruptArchive,
            "config %s of manifest" % builder.images[0].id,
        )

    def test_missing_manifest(self):
        builder = oci_archive(make_image())
        builder.remove(builder.blob_name(builder.info["manifest_digests"][0]))
        self.assertRefused(
            builder.to_bytes(), CorruptArchive, "holds no complete image"
        )

    def test_missing_legacy_layer(self):
        builder = legacy_docker_save(make_image())
        name = builder.info["v1_ids"][0][0] + "/layer.tar"
        builder.remove(name)
        self.assertRefused(
            builder.to_bytes(), CorruptArchive, "'%s' is missing" % name
        )

    def test_missing_legacy_config(self):
        image = make_image()
        builder = legacy_docker_save(image)
        builder.remove(_hex(image.id) + ".json")
        self.assertRefused(builder.to_bytes(), CorruptArchive, "is missing")

    def test_containerd_present_platform_layer_missing(self):
        builder = docker25_containerd(make_image())
        builder.remove(builder.blob_name(builder.images[0].layer_digests[0]))
        self.assertRefused(builder.to_bytes(), CorruptArchive, "is missing")

    def test_non_foreign_layer_source_is_not_an_excuse(self):
        # Docker 25 classic lists every layer in LayerSources, with a
        # non-foreign media type: a missing blob is still missing.
        image = make_image(tags=())
        builder = docker25_classic(image, version="25.0.0")
        builder.remove(builder.blob_name(image.diff_ids[0]))
        self.assertRefused(builder.to_bytes(), CorruptArchive, "is missing")

    def test_no_metadata(self):
        builder = oci_archive(make_image())
        builder.remove("index.json")
        self.assertRefused(
            builder.to_bytes(),
            CorruptArchive,
            "no manifest.json or index.json",
        )


class TestJSON(GatherTestCase):
    def test_invalid_json(self):
        for name, builder in (
            ("index.json", oci_archive(make_image())),
            ("manifest.json", legacy_docker_save(make_image())),
        ):
            for data in (b"{not json", b"\xff\xfe", b'{"a": NaN}', b""):
                builder.replace(name, data)
                self.assertRefused(
                    builder.to_bytes(), MalformedContent, name + " is not"
                )

    def test_oversized_json(self):
        builder = legacy_docker_save(make_image())
        builder.replace("manifest.json", big_json(5 << 20, base=[{}]))
        self.assertRefused(
            builder.to_bytes(),
            CorruptArchive,
            "'manifest.json' is not a JSON document (5242880 bytes)",
        )

    def test_oversized_index(self):
        builder = oci_archive(make_image())
        builder.replace("index.json", big_json((4 << 20) + 1))
        self.assertRefused(builder.to_bytes(), CorruptArchive, "index.json")

    def test_deeply_nested_json(self):
        for depth in (MAX_JSON_DEPTH + 1, 100000):
            builder = oci_archive(make_image())
            builder.replace("index.json", deep_json(depth))
            self.assertRefused(
                builder.to_bytes(),
                MalformedContent,
                "index.json is too deeply nested",
            )

    def test_deeply_nested_config(self):
        image = make_image(config_overrides={"x": json.loads(deep_json(80))})
        self.assertRefused(
            legacy_docker_save(image).to_bytes(),
            MalformedContent,
            "config is too deeply nested",
        )

    def test_wrong_json_types(self):
        cases = [
            ("manifest.json", lambda m: {"not": "a list"}, "not a list"),
            ("manifest.json", lambda m: [1], "is not an object"),
            (
                "manifest.json",
                lambda m: m[0].__setitem__("Layers", "x"),
                "Layers is not a list",
            ),
            (
                "manifest.json",
                lambda m: m[0].__setitem__("RepoTags", [1]),
                "RepoTags is not a string list",
            ),
        ]
        for name, mutate, fragment in cases:
            builder = legacy_docker_save(make_image())
            tamper_json(builder, name, mutate)
            self.assertRefused(builder.to_bytes(), CorruptArchive, fragment)

    def test_wrong_index_types(self):
        cases = [
            (lambda i: [], "index.json is not a JSON object", CorruptArchive),
            (
                lambda i: i.__setitem__("manifests", {}),
                "is not a list",
                CorruptArchive,
            ),
            (
                lambda i: i["manifests"][0].__setitem__("size", -1),
                "invalid size -1",
                MalformedContent,
            ),
            (
                lambda i: i["manifests"][0].__setitem__("size", True),
                "invalid size True",
                MalformedContent,
            ),
            (
                lambda i: i["manifests"][0].__setitem__("annotations", [1]),
                "annotations is not a string map",
                MalformedContent,
            ),
            (
                lambda i: i["manifests"][0].__setitem__("platform", "x"),
                "platform is not an object",
                MalformedContent,
            ),
        ]
        for mutate, fragment, error in cases:
            builder = oci_archive(make_image())
            tamper_json(builder, "index.json", mutate)
            self.assertRefused(builder.to_bytes(), error, fragment)

    def test_config_without_diff_ids(self):
        image = make_image(config_overrides={"rootfs": {"type": "layers"}})
        self.assertRefused(
            legacy_docker_save(image).to_bytes(),
            CorruptArchive,
            "has no rootfs.diff_ids list",
        )

    def test_null_manifest_json(self):
        builder = legacy_docker_save(make_image())
        builder.replace("manifest.json", b"null")
        self.assertRefused(
            builder.to_bytes(), CorruptArchive, "manifest.json is null"
        )

    def test_empty_manifest_json(self):
        builder = legacy_docker_save(make_image())
        builder.replace("manifest.json", b"[]")
        self.assertRefused(
            builder.to_bytes(), CorruptArchive, "holds no complete image"
        )


class TestIndexes(GatherTestCase):
    def test_index_cycle(self):
        for self_loop in (False, True):
            builder = index_cycle_archive(self_loop=self_loop)
            self.assertRefused(
                builder.to_bytes(),
                DigestMismatch,
                "'blobs/sha256/%s' does not match its digest"
                % _hex(builder.info["a_digest"]),
            )

    def test_honest_nesting(self):
        result, outdir = self.gather(nested_index_archive(8).to_bytes())
        self.assertValidLayout(outdir)

    def test_too_deep_nesting(self):
        self.assertRefused(
            nested_index_archive(9).to_bytes(),
            UnsafeArchive,
            "nests indexes more than 8 deep",
        )

    def test_unknown_media_type_dropped(self):
        builder = oci_archive([make_image(), make_image(tags=("x:1",))])
        tamper_json(
            builder,
            "index.json",
            lambda i: i["manifests"][1].__setitem__(
                "mediaType", "application/x-unknown"
            ),
        )
        result, outdir = self.gather(builder.to_bytes())
        self.assertEqual(1, len(self.assertValidLayout(outdir).images))
        self.assertIn("application/x-unknown", result.dropped[0])


class TestMalformedDigests(GatherTestCase):
    def test_malformed_digests(self):
        for digest in MALFORMED_DIGESTS:
            for where in ("manifest", "layer"):
                builder = malformed_digest_archive(digest, where=where)
                error = self.assertRefused(
                    builder.to_bytes(), MalformedContent, "digest"
                )
                self.assertTrue(
                    "malformed" in str(error) or "unsupported" in str(error),
                    str(error),
                )

    def test_malformed_diff_id(self):
        image = make_image()
        builder = legacy_docker_save(image)
        config = json.loads(image.config)
        config["rootfs"]["diff_ids"][0] = "sha256:XYZ"
        data = json.dumps(config).encode()
        builder.add_file(_hex(image.id) + ".json.new", data)
        builder.remove(_hex(image.id) + ".json")
        tamper_json(
            builder,
            "manifest.json",
            lambda m: m[0].__setitem__("Config", _hex(image.id) + ".json.new"),
        )
        self.assertRefused(
            builder.to_bytes(), CorruptArchive, "rootfs.diff_ids: malformed"
        )

    def test_blob_name_malformed(self):
        # A docker25 manifest.json path naming a blob with a bad digest.
        image = make_image(tags=())
        builder = docker25_classic(image, version="25.0.0")
        name = builder.blob_name(image.id)
        builder.rename(
            name, name.upper().replace("BLOBS/SHA256", "blobs/sha256")
        )
        tamper_json(
            builder,
            "manifest.json",
            lambda m: m[0].__setitem__(
                "Config", "blobs/sha256/" + _hex(image.id).upper()
            ),
        )
        self.assertRefused(builder.to_bytes(), CorruptArchive, "malformed")


class TestUnsupported(GatherTestCase):
    def test_pre_1_10(self):
        self.assertRefused(
            pre_1_10_save(make_image()).to_bytes(),
            UnsupportedArchive,
            "pre-1.10 docker save archive",
        )

    def test_sha512_blob(self):
        builder = oci_archive(make_image())
        digest = builder.info["manifest_digests"][0]
        data = builder.get(builder.blob_name(digest))
        sha512 = hashlib.sha512(data).hexdigest()
        builder.add_file("blobs/sha512/" + sha512, data)
        tamper_json(
            builder,
            "index.json",
            lambda i: i["manifests"][0].__setitem__(
                "digest", "sha512:" + sha512
            ),
        )
        self.assertRefused(
            builder.to_bytes(), UnsupportedArchive, "sha512 digests"
        )
