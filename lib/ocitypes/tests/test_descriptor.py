# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `Descriptor`, `MediaType` and `Platform`."""

__all__ = []

import base64
import hashlib

from testtools import TestCase

from ocitypes.descriptor import (
    Descriptor,
    MediaType,
    Platform,
    check_foreign_url,
    check_media_type,
)
from ocitypes.digest import Digest
from ocitypes.errors import MalformedContent
from ocitypes.testing import MALFORMED_DIGESTS

DIGEST = "sha256:" + "a" * 64


def descriptor(**overrides):
    value = {"mediaType": MediaType.OCI_MANIFEST, "digest": DIGEST, "size": 3}
    value.update(overrides)
    return value


class TestDescriptor(TestCase):
    def test_round_trip(self):
        value = descriptor(
            annotations={"b": "2", "a": "1"},
            platform={"os": "linux", "architecture": "arm", "variant": "v7"},
            urls=["https://example.com/x"],
        )
        desc = Descriptor.from_json(value)
        self.assertEqual(Digest.parse(DIGEST), desc.digest)
        self.assertEqual(Platform("linux", "arm", "v7"), desc.platform)
        self.assertEqual(value, desc.to_json())
        self.assertEqual(["a", "b"], list(desc.to_json()["annotations"]))

    def test_missing_media_type_allowed(self):
        value = descriptor()
        del value["mediaType"]
        self.assertEqual("", Descriptor.from_json(value).media_type)

    def test_invalid(self):
        cases = [
            ([], "is not an object"),
            (descriptor(mediaType=1), "mediaType is not a reasonable string"),
            (descriptor(mediaType="x" * 2000), "not a reasonable string"),
            (descriptor(size=-1), "invalid size -1"),
            (descriptor(size="3"), "invalid size '3'"),
            (descriptor(size=1.5), "invalid size 1.5"),
            (descriptor(size=False), "invalid size False"),
            (descriptor(size=1 << 60), "invalid size"),
            (descriptor(annotations={"a": 1}), "not a string map"),
            (descriptor(urls="x"), "urls is not a list"),
            (descriptor(urls=[1]), "urls is not a reasonable string"),
            (descriptor(platform=[]), "platform is not an object"),
            (descriptor(platform={"os": 1}), "platform.os"),
            # The builder's reader refuses what Launchpad would refuse.
            (
                descriptor(mediaType="application/x\r\nX-Injected: 1"),
                "is not a media type (RFC 6838)",
            ),
            (descriptor(mediaType="text/html; x=1"), "is not a media type"),
            (
                descriptor(urls=["http://169.254.169.254/latest"]),
                "is not an https URL",
            ),
            (
                descriptor(urls=["https://169.254.169.254/"]),
                "is not a public address",
            ),
        ]
        for value, fragment in cases:
            e = self.assertRaises(
                MalformedContent, Descriptor.from_json, value, "thing"
            )
            self.assertIn(fragment, str(e))
            self.assertTrue(str(e).startswith("thing"), str(e))

    def test_media_type_grammar(self):
        for name, good in vars(MediaType).items():
            if name.isupper() and isinstance(good, str):
                self.assertEqual(good, check_media_type(good))
        for bad in (
            "",
            "a",
            "a/",
            "/b",
            "a/b ",
            "a/b\n",
            "a/b;c=d",
            "a b/c",
            "\u00e9/x",
            "a/" + "b" * 128,
            "-a/b",
        ):
            self.assertRaises(MalformedContent, check_media_type, bad)
        self.assertEqual("a/" + "b" * 127, check_media_type("a/" + "b" * 127))

    def test_foreign_urls(self):
        for good in (
            "https://mcr.microsoft.com/v2/x/blobs/sha256:00",
            "https://8.8.8.8/x",
            "https://example.com:8443/x",
        ):
            self.assertEqual(good, check_foreign_url(good))
        for bad in (
            "http://example.com/x",
            "ftp://example.com/x",
            "file:///etc/shadow",
            "https:///x",
            "https://u:p@example.com/",
            "https://127.0.0.1/",
            "https://127.1/",
            "https://2130706433/",
            "https://[::1]/",
            "https://[fe80::1]/",
            "https://10.0.0.1/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://224.0.0.1/",
            "https://0.0.0.0/",
            "https://localhost/",
            "https://a.localhost/",
            "https://metadata.google.internal/",
            "https://printer.local/",
            "https://intranet/",
            "https://example.com:99999/",
            "https://example.com/\n",
        ):
            self.assertRaises(MalformedContent, check_foreign_url, bad)

    def test_malformed_digests(self):
        for digest in MALFORMED_DIGESTS + (None,):
            self.assertRaises(
                MalformedContent,
                Descriptor.from_json,
                descriptor(digest=digest),
            )

    def test_foreign(self):
        for media_type in MediaType.FOREIGN_LAYERS:
            desc = Descriptor.from_json(descriptor(mediaType=media_type))
            self.assertTrue(desc.is_foreign)
        desc = Descriptor.from_json(descriptor(mediaType=MediaType.OCI_LAYER))
        self.assertFalse(desc.is_foreign)

    def test_equality_ignores_annotations(self):
        self.assertEqual(
            Descriptor.from_json(descriptor(annotations={"a": "b"})),
            Descriptor.from_json(descriptor()),
        )


class TestMediaType(TestCase):
    def test_layer_for(self):
        self.assertEqual(MediaType.OCI_LAYER, MediaType.layer_for(None))
        self.assertEqual(MediaType.OCI_LAYER_GZIP, MediaType.layer_for("gzip"))
        self.assertEqual(MediaType.OCI_LAYER_ZSTD, MediaType.layer_for("zstd"))
        self.assertRaises(KeyError, MediaType.layer_for, "xz")


class TestPlatform(TestCase):
    def test_from_json(self):
        platform = Platform.from_json({"os": "linux", "architecture": "amd64"})
        self.assertEqual("linux/amd64", str(platform))
        self.assertFalse(platform.is_unknown)
        self.assertEqual(
            {"os": "linux", "architecture": "amd64"}, platform.to_json()
        )

    def test_unknown(self):
        for value in ({}, {"os": "unknown", "architecture": "unknown"}):
            self.assertTrue(Platform.from_json(value).is_unknown)


class TestDescriptorData(TestCase):
    content = b"abc"
    digest = "sha256:" + hashlib.sha256(b"abc").hexdigest()

    def test_matching_data_accepted(self):
        value = descriptor(
            digest=self.digest, data=base64.b64encode(b"abc").decode()
        )
        self.assertEqual(3, Descriptor.from_json(value).size)

    def test_mismatching_data_refused(self):
        for data, fragment in (
            (base64.b64encode(b"abd").decode(), "does not match"),
            (base64.b64encode(b"abcd").decode(), "has 4 bytes"),
            ("a b c", "not valid base64"),
            (["x"], "not a string"),
        ):
            value = descriptor(digest=self.digest, data=data)
            e = self.assertRaises(
                MalformedContent, Descriptor.from_json, value, "d"
            )
            self.assertIn(fragment, str(e))


class TestPlatformWords(TestCase):
    def test_unprintable_refused(self):
        for field in ("os", "architecture", "variant"):
            for bad in ("a\nb", "x y", "\x1b", "caf\u00e9", "/", "-x"):
                value = {"os": "linux", "architecture": "amd64"}
                value[field] = bad
                self.assertRaises(MalformedContent, Platform.from_json, value)
