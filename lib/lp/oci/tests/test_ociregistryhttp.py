# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Unit tests for the registry client's pure parts (no registry)."""

__all__ = []

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import requests

from lp.oci.interfaces.ociregistryclient import (
    MultipleOCIRegistryError,
    OCIRegistryError,
)
from lp.oci.model.ociregistryclient import (
    OCIRegistryClient,
    _platform_key,
    _range_end,
)
from lp.oci.model.ociregistryhttp import (
    BearerTokenRegistryClient,
    RegistryHTTPClient,
    RetryPolicy,
    is_retryable_status,
    parse_registry_errors,
)
from lp.testing import TestCase
from ocitypes.descriptor import MediaType


def make_response(status=200, headers=None, body=b""):
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers or {})
    response._content = body
    return response


class TestRetryPolicy(TestCase):
    def test_retryable_statuses(self):
        for status in (408, 429, 500, 502, 503, 504):
            self.assertTrue(is_retryable_status(status), status)
        for status in (400, 401, 403, 404, 405, 409, 413, 416):
            self.assertFalse(is_retryable_status(status), status)

    def test_backoff_grows_and_is_capped(self):
        policy = RetryPolicy(base_delay=1.0, max_delay=4.0)
        for attempt, (low, high) in enumerate(
            [(0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (2.0, 4.0)], 1
        ):
            delay = policy.delay(attempt)
            self.assertTrue(low <= delay <= high, (attempt, delay))

    def test_retry_after_seconds(self):
        policy = RetryPolicy(max_retry_after=30)
        self.assertEqual(
            7.0, policy.delay(1, make_response(429, {"Retry-After": "7"}))
        )
        # Longer than the policy waits: the request fails, transient,
        # saying when to try again (at most a day later).
        for value, retry_after in (("900", 900), ("9999999", 86400)):
            e = self.assertRaises(
                OCIRegistryError,
                policy.delay,
                1,
                make_response(429, {"Retry-After": value}),
            )
            self.assertTrue(e.transient)
            self.assertEqual(retry_after, e.retry_after)
            self.assertIn("over the 30 s a push waits", str(e))

    def test_retry_after_date(self):
        when = datetime.now(timezone.utc) + timedelta(seconds=20)
        delay = RetryPolicy().delay(
            1,
            make_response(
                503, {"Retry-After": format_datetime(when, usegmt=True)}
            ),
        )
        self.assertTrue(15 <= delay <= 20, delay)


class TestRetryAfterOnErrors(TestCase):
    def test_error_from_an_answer_carries_its_retry_after(self):
        e = OCIRegistryClient._makeRegistryError(
            OCIRegistryError,
            "Cannot start a blob upload",
            make_response(503, {"Retry-After": "120"}),
        )
        self.assertTrue(e.transient)
        self.assertEqual(120, e.retry_after)
        # Only a transient answer's; at most a day.
        e = OCIRegistryClient._makeRegistryError(
            OCIRegistryError,
            "Denied",
            make_response(403, {"Retry-After": "120"}),
        )
        self.assertIsNone(e.retry_after)
        e = OCIRegistryClient._makeRegistryError(
            OCIRegistryError,
            "Busy",
            make_response(429, {"Retry-After": "9999999"}),
        )
        self.assertEqual(86400, e.retry_after)

    def test_several_push_rules_wait_for_the_longest(self):
        e = MultipleOCIRegistryError(
            [
                OCIRegistryError("a", transient=True, retry_after=60),
                OCIRegistryError("b", transient=True),
                OCIRegistryError("c", transient=True, retry_after=600),
            ]
        )
        self.assertTrue(e.transient)
        self.assertEqual(600, e.retry_after)


class TestParsing(TestCase):
    def test_parse_registry_errors(self):
        response = make_response(
            400,
            body=b'{"errors": [{"code": "MANIFEST_INVALID", "message": "m",'
            b' "detail": {"x": 1}}, "junk"]}',
        )
        self.assertEqual(
            [{"code": "MANIFEST_INVALID", "message": "m", "detail": {"x": 1}}],
            parse_registry_errors(response),
        )
        self.assertEqual([], parse_registry_errors(make_response(400)))
        self.assertEqual(
            [], parse_registry_errors(make_response(400, body=b"<html>"))
        )

    def test_range_end(self):
        self.assertEqual(-1, _range_end("0--1"))
        self.assertEqual(-1, _range_end(None))
        self.assertEqual(16383, _range_end("0-16383"))
        self.assertEqual(99, _range_end("bytes=0-99"))
        self.assertEqual(-1, _range_end("5-99"))
        self.assertEqual(-1, _range_end("junk"))

    def test_platform_key(self):
        self.assertEqual(
            _platform_key({"os": "linux", "architecture": "arm64"}),
            _platform_key(
                {"os": "linux", "architecture": "arm64", "variant": "v8"}
            ),
        )
        self.assertNotEqual(
            _platform_key({"os": "linux", "architecture": "arm"}),
            _platform_key(
                {"os": "linux", "architecture": "arm", "variant": "v6"}
            ),
        )


class TestHTTPClient(TestCase):
    def test_repr_and_errors_never_show_credentials(self):
        client = RegistryHTTPClient(
            registry_url="https://r.example/",
            image_name="a/b",
            credentials={"username": "u", "password": "hunter2"},
        )
        self.assertEqual("https://r.example/v2/a/b", client.api_url)
        self.assertNotIn("hunter2", repr(client))
        self.assertEqual(("u", "hunter2"), client.credentials)

    def test_bearer_scopes(self):
        client = BearerTokenRegistryClient(
            registry_url="https://r.example", image_name="a/b"
        )
        self.assertEqual(("repository:a/b:pull,push",), client._scope())
        self.assertEqual(
            ("repository:a/b:pull,push", "repository:c/d:pull"),
            client._scope("c/d"),
        )
        token_type, values = client.parseAuthInstructions(
            make_response(
                401,
                {
                    "WWW-Authenticate": 'Bearer realm="https://auth.example/'
                    'token",service="registry",scope="repository:a/b:pull"'
                },
            )
        )
        self.assertEqual("Bearer", token_type)
        self.assertEqual(
            {
                "realm": "https://auth.example/token",
                "service": "registry",
                "scope": "repository:a/b:pull",
            },
            values,
        )


class FakePushRule:
    def __init__(self, registry_url, image_name):
        self.registry_url = registry_url
        self.image_name = image_name


class TestFindMountSource(TestCase):
    def test_pulled_layer(self):
        # A layer that the build pulled can be mounted from its repository
        # if that is on the same registry, Docker Hub's names counting as
        # one.
        push_rule = FakePushRule("https://registry-1.docker.io", "ubuntu/app")
        find = OCIRegistryClient._findMountSource
        for source in (
            "docker.io/library/ubuntu",
            "index.docker.io/library/ubuntu",
            "Registry.Hub.Docker.com/library/ubuntu",
        ):
            self.assertEqual(
                "library/ubuntu", find(push_rule, "sha256:1", source, {})
            )
        self.assertIsNone(
            find(push_rule, "sha256:1", "ghcr.io/library/ubuntu", {})
        )
        # Not from the repository being pushed to.
        self.assertIsNone(
            find(push_rule, "sha256:1", "docker.io/ubuntu/app", {})
        )
        for source in ("", None, "nohost"):
            self.assertIsNone(find(push_rule, "sha256:1", source, {}))
        local = FakePushRule("http://127.0.0.1:5000", "x")
        self.assertEqual(
            "a/b", find(local, "sha256:1", "127.0.0.1:5000/a/b", {})
        )

    def test_pushed_by_this_upload_first(self):
        # A repository this upload already pushed the blob to, on the
        # same registry, comes before the pulled-from one.
        push_rule = FakePushRule("https://registry-1.docker.io", "ubuntu/app")
        find = OCIRegistryClient._findMountSource
        uploaded = {
            ("https://registry-1.docker.io", "sha256:1"): "ubuntu/other",
            ("https://ghcr.io", "sha256:2"): "elsewhere",
        }
        # The pulled-from repository is on this registry too: the order
        # decides.
        self.assertEqual(
            "ubuntu/other",
            find(push_rule, "sha256:1", "docker.io/library/ubuntu", uploaded),
        )
        self.assertEqual(
            "library/ubuntu",
            find(push_rule, "sha256:1", "docker.io/library/ubuntu", {}),
        )
        self.assertIsNone(find(push_rule, "sha256:2", None, uploaded))
        # The repository being pushed to is not a source.
        self.assertIsNone(
            find(
                push_rule,
                "sha256:1",
                None,
                {("https://registry-1.docker.io", "sha256:1"): "ubuntu/app"},
            )
        )


class TestMakeMultiArchManifest(TestCase):
    def entry(self, arch, media_type=MediaType.OCI_MANIFEST, digest=None):
        return {
            "mediaType": media_type,
            "digest": digest or "sha256:" + arch[0] * 64,
            "size": 10,
            "platform": {"architecture": arch, "os": "linux"},
        }

    def test_replaces_same_platform_keeps_others(self):
        client = OCIRegistryClient()
        current = [self.entry("amd64"), self.entry("s390x")]
        new = self.entry("amd64", digest="sha256:" + "f" * 64)
        index = client.makeMultiArchManifest(current, {}, [new])
        self.assertEqual(MediaType.OCI_INDEX, index["mediaType"])
        self.assertEqual(
            [("s390x", "sha256:" + "s" * 64), ("amd64", "sha256:" + "f" * 64)],
            [
                (m["platform"]["architecture"], m["digest"])
                for m in index["manifests"]
            ],
        )

    def test_docker_children_make_a_docker_list(self):
        client = OCIRegistryClient()
        index = client.makeMultiArchManifest(
            [self.entry("arm64", MediaType.DOCKER_MANIFEST)],
            {},
            [self.entry("amd64", MediaType.DOCKER_MANIFEST)],
        )
        self.assertEqual(MediaType.DOCKER_MANIFEST_LIST, index["mediaType"])

    def test_mixed_children_make_an_oci_index(self):
        client = OCIRegistryClient()
        index = client.makeMultiArchManifest(
            [self.entry("arm64", MediaType.DOCKER_MANIFEST)],
            {"org.example": "kept"},
            [self.entry("amd64")],
        )
        self.assertEqual(MediaType.OCI_INDEX, index["mediaType"])
        self.assertEqual({"org.example": "kept"}, index["annotations"])

    def test_attestations_of_replaced_manifests_dropped(self):
        client = OCIRegistryClient()
        old = self.entry("amd64")
        attestation = {
            "mediaType": MediaType.OCI_MANIFEST,
            "digest": "sha256:" + "9" * 64,
            "size": 5,
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {
                "vnd.docker.reference.digest": old["digest"],
                "vnd.docker.reference.type": "attestation-manifest",
            },
        }
        index = client.makeMultiArchManifest(
            [old, attestation],
            {},
            [self.entry("amd64", digest="sha256:" + "e" * 64)],
        )
        self.assertEqual(
            ["sha256:" + "e" * 64], [m["digest"] for m in index["manifests"]]
        )
