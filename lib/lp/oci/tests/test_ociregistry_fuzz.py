# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Structured fuzzing of what the registry client reads from a registry.

The tag's current manifest list, index or manifest, a manifest's config,
digest headers, error bodies, challenges and token answers, damaged by
`lp.oci.tests.registryfuzzing` at the wire.  The client must succeed or
raise what its callers handle (`OCIRegistryError` or a
`requests.RequestException`), never anything else.
"""

__all__ = []

import json

import requests
from hypothesis import given
from hypothesis import strategies as st
from testtools import TestCase

from lp.oci.interfaces.ociregistryclient import ManifestListUploadFailed
from lp.oci.model.ociregistryclient import OCIRegistryClient
from lp.oci.model.ociregistryhttp import BearerTokenRegistryClient
from lp.oci.tests.registryfuzzing import (
    ALLOWED_ERRORS,
    StaticRegistryAdapter,
    fuzzed_http_client,
    run_manifest_list_update,
    run_token_exchange,
)
from lpbuildd.tests.fuzzing import fuzz_settings
from ocitypes.descriptor import MediaType
from ocitypes.digest import Digest


class TestFuzzRegistryAnswers(TestCase):
    @fuzz_settings(150)
    @given(st.randoms(use_true_random=False))
    def test_manifest_list_update(self, rng):
        try:
            digest = run_manifest_list_update(rng)
        except ALLOWED_ERRORS:
            pass
        else:
            self.assertIsInstance(digest, Digest)

    @fuzz_settings(100)
    @given(st.randoms(use_true_random=False))
    def test_token_exchange(self, rng):
        try:
            run_token_exchange(rng)
        except ALLOWED_ERRORS:
            pass


class TestFuzzCrashers(TestCase):
    """What the fuzzer found, as regression tests (each raised
    `TypeError`, `AttributeError` or `ValueError` before the fix)."""

    children = [
        {
            "mediaType": MediaType.OCI_MANIFEST,
            "digest": "sha256:" + "1" * 64,
            "size": 10,
            "platform": {"os": "linux", "architecture": "amd64"},
        }
    ]

    def merge(self, *entries):
        return OCIRegistryClient().makeMultiArchManifest(
            list(entries), {}, self.children
        )

    def test_entry_platform_not_an_object(self):
        index = self.merge({"platform": 7, "digest": "a"})
        self.assertEqual(2, len(index["manifests"]))

    def test_entry_platform_fields_not_strings(self):
        index = self.merge({"platform": {"os": [], "architecture": {}}})
        self.assertEqual(2, len(index["manifests"]))

    def test_entry_digest_not_a_string(self):
        replaced = {"platform": {"os": "linux", "architecture": "amd64"}}
        index = self.merge(dict(replaced, digest=[]), {"digest": "x"})
        self.assertEqual([{"digest": "x"}] + self.children, index["manifests"])

    def test_entry_annotations_not_an_object(self):
        index = self.merge({"annotations": ["x"]})
        self.assertEqual(2, len(index["manifests"]))

    def test_entry_media_type_not_a_string(self):
        index = self.merge({"mediaType": ["x"]})
        self.assertEqual(MediaType.OCI_INDEX, index["mediaType"])

    def test_tag_media_type_not_a_string(self):
        content = json.dumps({"mediaType": ["x"], "manifests": []}).encode()
        http_client = fuzzed_http_client(
            StaticRegistryAdapter(
                200, {"Content-Type": MediaType.OCI_INDEX}, content
            )
        )
        client = OCIRegistryClient()
        document, media_type, digest, size = (
            client._getCurrentRegistryManifest(http_client, "edge")
        )
        self.assertEqual(MediaType.OCI_INDEX, media_type)
        self.assertEqual(
            ([], {}),
            client._existingEntries(
                http_client, document, media_type, digest, size
            ),
        )

    def test_index_manifests_not_a_list(self):
        self.assertEqual(
            ([], {}),
            OCIRegistryClient()._existingEntries(
                None,
                {"manifests": 7},
                MediaType.OCI_INDEX,
                Digest.of_bytes(b""),
                0,
            ),
        )

    def test_manifest_config_digest_is_not_put_in_a_url(self):
        # A single manifest at the tag: its config is fetched by digest,
        # and only by a well-formed one.
        adapter = StaticRegistryAdapter(404)
        entries = OCIRegistryClient()._existingEntries(
            fuzzed_http_client(adapter),
            {"config": {"digest": "../../../v2/other/manifests/x"}},
            MediaType.OCI_MANIFEST,
            Digest.of_bytes(b""),
            0,
        )
        self.assertEqual(([], {}), entries)
        self.assertEqual([], adapter.urls)

    def test_malformed_tag_digest_header(self):
        http_client = fuzzed_http_client(
            StaticRegistryAdapter(200, {"Docker-Content-Digest": "sha256:x"})
        )
        error = self.assertRaises(
            ManifestListUploadFailed,
            OCIRegistryClient()._headTag,
            http_client,
            "edge",
        )
        self.assertEqual(
            "The registry gave tag edge a malformed digest 'sha256:x'",
            str(error),
        )

    def test_challenge_parameter_without_value(self):
        # The fuzzer's challenge 'Bearer \x02...,realm=...': parse_keqv_list
        # raised ValueError on the element without "=".
        response = requests.Response()
        response.headers["WWW-Authenticate"] = (
            'Bearer \x02x,realm="https://auth.example/token",service=reg'
        )
        client = BearerTokenRegistryClient(
            registry_url="https://registry.example", image_name="a/b"
        )
        self.assertEqual(
            (
                "Bearer",
                {"realm": "https://auth.example/token", "service": "reg"},
            ),
            client.parseAuthInstructions(response),
        )

    def test_challenge_parameter_with_empty_value(self):
        # parse_keqv_list raised IndexError on 'service='.
        response = requests.Response()
        response.headers["WWW-Authenticate"] = (
            'Bearer realm="https://auth.example/token",service=,scope=""'
        )
        client = BearerTokenRegistryClient(
            registry_url="https://registry.example", image_name="a/b"
        )
        self.assertEqual(
            (
                "Bearer",
                {
                    "realm": "https://auth.example/token",
                    "service": "",
                    "scope": "",
                },
            ),
            client.parseAuthInstructions(response),
        )
