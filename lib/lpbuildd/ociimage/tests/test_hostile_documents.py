# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Hostile JSON documents and names: refused before anything is written.

Strings that are valid JSON but not Unicode, fields of the wrong type,
duplicate keys, documents contradicting their descriptors, platforms
contradicting configs, image names outside the reference grammar; and
index graphs built to make a careless walker do exponential work.
"""

__all__ = []

import base64
import json

from lpbuildd.ociimage import resolver as resolver_module
from lpbuildd.ociimage.errors import CorruptArchive, UnsafeArchive
from lpbuildd.ociimage.reference import parse_ref_name, parse_reference
from lpbuildd.ociimage.tests.helpers import GatherTestCase
from lpbuildd.tests.archivebuilder import (
    OCI_INDEX,
    OCI_MANIFEST,
    docker25_classic,
    legacy_docker_save,
    make_image,
    oci_archive,
    replace_blob,
    sha256_digest,
)
from ocitypes.digest import Digest
from ocitypes.errors import MalformedContent


def _json(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def _index(children):
    return _json(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
    )


def _desc(data, media_type=OCI_INDEX, **extra):
    return dict(
        mediaType=media_type,
        digest=sha256_digest(data),
        size=len(data),
        **extra,
    )


class TestReferences(GatherTestCase):
    def test_normalised_as_docker_does(self):
        cases = {
            "ubuntu": ("docker.io/library/ubuntu", "latest"),
            "ubuntu:24.04": ("docker.io/library/ubuntu", "24.04"),
            "docker.io/ubuntu": ("docker.io/library/ubuntu", "latest"),
            "index.docker.io/a/b:1": ("docker.io/a/b", "1"),
            "a/b": ("docker.io/a/b", "latest"),
            "localhost/x": ("localhost/x", "latest"),
            "localhost:5000/a/b:1.0": ("localhost:5000/a/b", "1.0"),
            "Example.COM/a": ("Example.COM/a", "latest"),
            "ubuntu@sha256:" + "a" * 64: ("docker.io/library/ubuntu", None),
            "x:t@sha256:" + "a" * 64: ("docker.io/library/x", "t"),
        }
        for text, expected in cases.items():
            self.assertEqual(expected, parse_reference(text, "name"), text)

    def test_ref_name_tag_or_reference(self):
        self.assertEqual((None, "24.04"), parse_ref_name("24.04", "r"))
        self.assertEqual(
            ("docker.io/library/a", "1"), parse_ref_name("a:1", "r")
        )

    def test_invalid_refused(self):
        bad = [
            "",
            "a/UPPER",
            "a//b",
            "../x",
            "/abs",
            "a/../b",
            "a:b:c",
            "-lead",
            "x y",
            "x\n  images: 9",
            "x\r",
            "x\x1b[31m",
            "caf\u00e9",
            "x\ud800",
            "a" * 300,
            "x:" + "t" * 129,
            "x@sha256:zz",
        ]
        for text in bad:
            error = self.assertRaises(
                CorruptArchive, parse_reference, text, "RepoTags"
            )
            self.assertNotIn("\n", str(error))
            self.assertTrue(str(error).isprintable(), str(error))
        for text in ("x\ny", "a/../b", "\ud800"):
            self.assertRaises(CorruptArchive, parse_ref_name, text, "r")

    def test_repo_tag_without_tag_is_latest(self):
        result, outdir = self.gather(
            legacy_docker_save(make_image(tags=["busybox"])).to_bytes()
        )
        image = self.assertValidLayout(outdir).images[0]
        self.assertEqual(
            [("docker.io/library/busybox:latest", "latest")], image.names
        )

    def test_forged_names_refused_end_to_end(self):
        forged = "x:1\nimages: 99"
        for builder in (
            legacy_docker_save(make_image(tags=[forged])),
            docker25_classic(make_image(tags=["ok:1"])),
        ):
            if "index.json" in builder:
                index = json.loads(builder.get("index.json"))
                index["manifests"][0]["annotations"][
                    "org.opencontainers.image.ref.name"
                ] = "../../etc"
                index["manifests"][0]["annotations"].pop(
                    "io.containerd.image.name", None
                )
                builder.replace("index.json", _json(index))
            self.assertRefused(
                builder.to_bytes(), CorruptArchive, "not a valid image"
            )


class TestUnencodableStrings(GatherTestCase):
    def test_lone_surrogates_refused(self):
        cases = [
            legacy_docker_save(make_image(tags=["app:\ud800"])),
            docker25_classic(make_image(tags=["example.com/a:\udfff"])),
            legacy_docker_save(make_image(os="lin\ud800ux")),
            legacy_docker_save(make_image(architecture="\udc80")),
            legacy_docker_save(make_image(config_overrides={"\ud800": "key"})),
        ]
        for builder in cases:
            self.assertRefused(
                builder.to_bytes(), MalformedContent, "not valid Unicode"
            )

    def test_valid_pairs_accepted(self):
        # An escaped surrogate pair is a real character.
        image = make_image(config_overrides={"author": "\U0001f600"})
        result, outdir = self.gather(legacy_docker_save(image).to_bytes())
        self.assertValidLayout(outdir)

    def test_unprintable_platform_refused(self):
        for os_name in ("linux\n  linux/amd64", "\x1b[2J", "a b"):
            self.assertRefused(
                legacy_docker_save(make_image(os=os_name)).to_bytes(),
                MalformedContent,
                "is not a valid name",
            )


class TestDocumentChecks(GatherTestCase):
    def manifest_archive(self):
        builder = oci_archive(make_image())
        return builder, builder.info["manifest_digests"][0]

    def test_non_string_media_type(self):
        for value in ([1], {"a": 1}, 5, True):
            builder, digest = self.manifest_archive()
            manifest = json.loads(builder.get("blobs/sha256/" + digest[7:]))
            manifest["mediaType"] = value
            replace_blob(builder, digest, _json(manifest))
            index = json.loads(builder.get("index.json"))
            del index["manifests"][0]["mediaType"]
            builder.replace("index.json", _json(index))
            self.assertRefused(
                builder.to_bytes(), CorruptArchive, "invalid mediaType"
            )

    def test_manifest_media_type_contradicts_descriptor(self):
        builder, digest = self.manifest_archive()
        manifest = json.loads(builder.get("blobs/sha256/" + digest[7:]))
        manifest["mediaType"] = (
            "application/vnd.docker.distribution.manifest.v2+json"
        )
        replace_blob(builder, digest, _json(manifest))
        self.assertRefused(
            builder.to_bytes(), CorruptArchive, "says its mediaType is"
        )

    def test_duplicate_keys_refused(self):
        def duplicate(data):
            return b'{"schemaVersion":2,' + data[1:]

        builder, digest = self.manifest_archive()
        replace_blob(
            builder,
            digest,
            duplicate(builder.get("blobs/sha256/" + digest[7:])),
        )
        self.assertRefused(
            builder.to_bytes(), MalformedContent, "duplicate key"
        )
        builder = oci_archive(make_image())
        builder.replace("index.json", duplicate(builder.get("index.json")))
        self.assertRefused(
            builder.to_bytes(), MalformedContent, "duplicate key"
        )
        image = make_image()
        builder = legacy_docker_save(image)
        builder.replace(
            "manifest.json",
            builder.get("manifest.json").replace(
                b'"RepoTags"', b'"RepoTags":null,"RepoTags"', 1
            ),
        )
        self.assertRefused(
            builder.to_bytes(), MalformedContent, "duplicate key"
        )

    def test_data_field_checked(self):
        builder, digest = self.manifest_archive()
        manifest = builder.get("blobs/sha256/" + digest[7:])
        good = base64.b64encode(manifest).decode()
        for data, fragment in (
            (base64.b64encode(manifest + b" ").decode(), "bytes"),
            (base64.b64encode(b"x" * len(manifest)).decode(), "not match"),
            ("!!not base64", "not valid base64"),
            (7, "not a string"),
            (good, None),
        ):
            builder, digest = self.manifest_archive()
            index = json.loads(builder.get("index.json"))
            index["manifests"][0]["data"] = data
            builder.replace("index.json", _json(index))
            if fragment is None:
                result, outdir = self.gather(builder.to_bytes())
                self.assertValidLayout(outdir)
            else:
                self.assertRefused(
                    builder.to_bytes(), MalformedContent, fragment
                )

    def test_platform_mismatch_refused(self):
        for platform in (
            {"os": "linux", "architecture": "arm64"},
            {"os": "windows", "architecture": "amd64"},
        ):
            builder = oci_archive(make_image())
            index = json.loads(builder.get("index.json"))
            index["manifests"][0]["platform"] = platform
            builder.replace("index.json", _json(index))
            self.assertRefused(
                builder.to_bytes(), CorruptArchive, "but its config says"
            )

    def test_index_variant_kept_when_config_has_none(self):
        builder = oci_archive(make_image(architecture="arm64"))
        index = json.loads(builder.get("index.json"))
        index["manifests"][0]["platform"] = {
            "os": "linux",
            "architecture": "arm64",
            "variant": "v8",
        }
        builder.replace("index.json", _json(index))
        result, outdir = self.gather(builder.to_bytes())
        self.assertEqual("linux/arm64/v8", str(result.images[0].platform))


class TestSharedIndexes(GatherTestCase):
    def shared_graph(self, width, depth):
        """index.json -> `depth` levels of one index listing the level
        below `width` times: width**depth paths, depth+1 documents."""
        builder = oci_archive(make_image())
        child = json.loads(builder.get("index.json"))["manifests"][0]
        for _ in range(depth):
            data = _index([child] * width)
            builder.add_file("blobs/sha256/" + sha256_digest(data)[7:], data)
            child = _desc(data)
        builder.replace("index.json", _index([child] * width))
        builder.sort()
        return builder

    def test_each_index_walked_once(self):
        # 50**7 (7.8e11) paths: only memoisation makes this finish.
        calls = []
        original = resolver_module.Resolver._read_config
        self.patch(
            resolver_module.Resolver,
            "_read_config",
            lambda *a: calls.append(1) or original(*a),
        )
        result, outdir = self.gather(self.shared_graph(50, 7).to_bytes())
        self.assertEqual(1, len(result.images))
        self.assertEqual(1, len(calls))
        self.assertValidLayout(outdir)

    def test_descriptors_bounded(self):
        self.patch(resolver_module, "MAX_DESCRIPTORS", 200)
        self.assertRefused(
            self.shared_graph(50, 7).to_bytes(),
            UnsafeArchive,
            "more than 200 descriptors",
        )

    def test_shared_index_depth_still_checked(self):
        # A shared index reached first shallowly, then under a deeper
        # path, must still count its own nesting.
        builder = oci_archive(make_image())
        leaf = json.loads(builder.get("index.json"))["manifests"][0]
        chain = leaf
        for _ in range(4):
            data = _index([chain])
            builder.add_file("blobs/sha256/" + sha256_digest(data)[7:], data)
            chain = _desc(data)
        shared = chain
        deep = shared
        for _ in range(5):
            data = _index([deep])
            builder.add_file("blobs/sha256/" + sha256_digest(data)[7:], data)
            deep = _desc(data)
        builder.replace("index.json", _index([shared, deep]))
        builder.sort()
        self.assertRefused(
            builder.to_bytes(), UnsafeArchive, "nests indexes more than 8"
        )

    def test_config_read_once_for_many_entries(self):
        image = make_image(tags=[f"app:{i}" for i in range(300)])
        builder = legacy_docker_save(image)
        manifest = json.loads(builder.get("manifest.json"))
        builder.replace("manifest.json", _json(manifest * 50))
        calls = []
        original = resolver_module.Resolver._read_config
        self.patch(
            resolver_module.Resolver,
            "_read_config",
            lambda *a: calls.append(1) or original(*a),
        )
        result, outdir = self.gather(builder.to_bytes())
        self.assertEqual(1, len(calls))
        self.assertEqual(300, len(result.images[0].names))

    def test_many_entries_of_one_image_cost_one_image(self):
        # 15,000 manifest.json entries (3 MB) of one image with a 1 MiB
        # config: one Image is built and its config hashed once, and
        # names merge in linear time (each entry used to cost a hash of
        # the config and a scan of every name so far).
        image = make_image(
            tags=["app:0"], config_overrides={"padding": "a" * (1 << 20)}
        )
        builder = legacy_docker_save(image)
        entry = json.loads(builder.get("manifest.json"))[0]
        entries = [dict(entry, RepoTags=[f"app:{i}"]) for i in range(15000)]
        builder.replace("manifest.json", _json(entries))
        built = []
        original = resolver_module.Image
        self.patch(
            resolver_module,
            "Image",
            lambda *a, **kw: built.append(1) or original(*a, **kw),
        )
        result, outdir = self.gather(builder.to_bytes())
        self.assertEqual(1, len(built))
        self.assertEqual(15000, len(result.images[0].names))

    def test_many_manifests_sharing_a_big_config_hash_it_once(self):
        image = make_image(config_overrides={"padding": "a" * (1 << 20)})
        builder = oci_archive(image)
        manifest = json.loads(
            builder.get("blobs/sha256/" + image_manifest_hex(builder))
        )
        entries = []
        for i in range(2000):
            data = _json(dict(manifest, annotations={"n": str(i)}))
            builder.add_file("blobs/sha256/" + sha256_digest(data)[7:], data)
            entries.append(_desc(data, OCI_MANIFEST))
        builder.replace(
            "index.json", _json({"schemaVersion": 2, "manifests": entries})
        )
        hashed = []
        original = Digest.of_bytes
        self.patch(
            Digest,
            "of_bytes",
            classmethod(
                lambda cls, data: (len(data) > 1 << 20 and hashed.append(1))
                or original(data)
            ),
        )
        result, outdir = self.gather(builder.to_bytes())
        self.assertEqual(1, len(result.images))
        # Once, when written: when read, the digest came with the blob.
        self.assertEqual(1, len(hashed))


def image_manifest_hex(builder):
    return builder.info["manifest_digests"][0][7:]


class TestNamesBounded(GatherTestCase):
    def test_names_handed_up_count_as_visits(self):
        # An index naming one image 1000 ways, listed 1000 times under
        # other names: a million name merges for 300 KB, unless names
        # count towards the bound on descriptors visited.
        builder = oci_archive(make_image(), ref_name=None)
        leaf = json.loads(builder.get("index.json"))["manifests"][0]
        names = [
            dict(
                leaf,
                annotations={"org.opencontainers.image.ref.name": f"t{i}"},
            )
            for i in range(1000)
        ]
        inner = _index(names)
        builder.add_file("blobs/sha256/" + sha256_digest(inner)[7:], inner)
        outer = [
            _desc(
                inner,
                annotations={
                    "io.containerd.image.name": f"example.com/r{i}:1"
                },
            )
            for i in range(1000)
        ]
        builder.replace("index.json", _index(outer))
        self.assertRefused(
            builder.to_bytes(),
            UnsafeArchive,
            f"more than {resolver_module.MAX_DESCRIPTORS} descriptors",
        )
