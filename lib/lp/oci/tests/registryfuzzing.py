# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Fuzzing support for what Launchpad reads from a registry.

A real registry never answers with a malformed manifest list, config,
error body, token or challenge, so these answers come from a requests
transport adapter (`FuzzRegistryAdapter`, mounted on the client's
session): the client's whole HTTP path runs (retries, authentication,
``response.json()``), only the bytes on the wire are chosen by `rng`,
starting from valid answers and damaged with
`ocitypes.testing.mutate_json`.

`run_manifest_list_update` drives `OCIRegistryClient`'s merge of a
tag's manifest list (reading the tag's current manifest or index, a
single manifest's config, the tag's digest, the registry's answers to
the pushes); `run_token_exchange` a bearer-token challenge and the
token server's answer.  Both return normally or raise what the
callers handle: `OCIRegistryError` or `requests.RequestException`.
"""

__all__ = [
    "ALLOWED_ERRORS",
    "FuzzRegistryAdapter",
    "StaticRegistryAdapter",
    "fuzzed_http_client",
    "run_manifest_list_update",
    "run_token_exchange",
]

import copy
import json

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from lp.oci.interfaces.ociregistryclient import OCIRegistryError
from lp.oci.model.ociregistryclient import OCIRegistryClient
from lp.oci.model.ociregistryhttp import (
    BearerTokenRegistryClient,
    RegistryHTTPClient,
    RetryPolicy,
)
from ocitypes.descriptor import MediaType
from ocitypes.digest import Digest
from ocitypes.testing import mutate_json, mutate_json_bytes

ALLOWED_ERRORS = (OCIRegistryError, requests.RequestException)
"""What the registry client's callers handle."""

REGISTRY = "http://registry.fuzz.invalid"
TOKEN_REALM = "http://token.fuzz.invalid/token"

_CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]},
}
_CONFIG_BYTES = json.dumps(_CONFIG).encode()


def _entry(media_type, seed, architecture, variant=None, annotations=None):
    platform = {"architecture": architecture, "os": "linux"}
    if variant:
        platform["variant"] = variant
    entry = {
        "mediaType": media_type,
        "digest": str(Digest.of_bytes(seed.encode())),
        "size": 100 + len(seed),
        "platform": platform,
    }
    if annotations:
        entry["annotations"] = annotations
    return entry


def _documents():
    """Valid answers for the tag: (media type, document)."""
    amd = _entry(MediaType.OCI_MANIFEST, "amd", "amd64")
    arm = _entry(MediaType.OCI_MANIFEST, "arm", "arm64", "v8")
    attestation = _entry(
        MediaType.OCI_MANIFEST,
        "att",
        "unknown",
        annotations={
            "vnd.docker.reference.type": "attestation-manifest",
            "vnd.docker.reference.digest": amd["digest"],
        },
    )
    attestation["platform"]["os"] = "unknown"
    index = {
        "schemaVersion": 2,
        "mediaType": MediaType.OCI_INDEX,
        "manifests": [amd, arm, attestation],
        "annotations": {"org.opencontainers.image.created": "2026"},
    }
    docker_list = {
        "schemaVersion": 2,
        "mediaType": MediaType.DOCKER_MANIFEST_LIST,
        "manifests": [
            _entry(MediaType.DOCKER_MANIFEST, "amd", "amd64"),
            _entry(MediaType.DOCKER_MANIFEST, "s390x", "s390x"),
        ],
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": MediaType.OCI_MANIFEST,
        "config": {
            "mediaType": MediaType.OCI_CONFIG,
            "digest": str(Digest.of_bytes(_CONFIG_BYTES)),
            "size": len(_CONFIG_BYTES),
        },
        "layers": [],
    }
    return [
        (MediaType.OCI_INDEX, index),
        (MediaType.DOCKER_MANIFEST_LIST, docker_list),
        (MediaType.OCI_MANIFEST, manifest),
    ]


_ERROR_BODY = {
    "errors": [
        {
            "code": "MANIFEST_INVALID",
            "message": "manifest invalid",
            "detail": {"reason": "x"},
        }
    ]
}


def _mutated_json(rng, value, chance=0.5):
    """`value` serialised, damaged with probability `chance`."""
    if rng.random() >= chance:
        return json.dumps(value).encode()
    if rng.random() < 0.6:
        return json.dumps(mutate_json(rng, copy.deepcopy(value))).encode()
    return mutate_json_bytes(rng, json.dumps(value).encode())


def _digest_header(rng, content):
    digest = str(Digest.of_bytes(content))
    return rng.choice(
        [digest] * 6
        + [
            None,
            "",
            " " + digest + " ",
            "sha256:" + "0" * 64,
            "sha256:xyz",
            "garbage",
            digest.upper(),
        ]
    )


class FuzzRegistryAdapter(BaseAdapter):
    """Answers a registry's and a token server's requests from `rng`.

    Every answer is a real `requests.Response`; its status, headers
    and body are chosen by `rng` among valid ones, then damaged.
    """

    def __init__(self, rng):
        super().__init__()
        self.rng = rng
        self.tag_status = rng.choice([200] * 6 + [404, 404, 401, 500, 418])
        self.media_type, document = rng.choice(_documents())
        self.tag_content = _mutated_json(rng, document, chance=0.7)
        self.requests = 0

    def _response(self, request, status, content=b"", headers=None):
        response = requests.Response()
        response.status_code = status
        response._content = content
        # Read already, as the client reads every body.
        response._content_consumed = True
        response.headers = CaseInsensitiveDict(
            {k: v for k, v in (headers or {}).items() if v is not None}
        )
        response.url = request.url
        response.request = request
        response.encoding = "utf-8"
        response.reason = "Fuzzed"
        return response

    def _error(self, request, status):
        return self._response(
            request,
            status,
            _mutated_json(self.rng, _ERROR_BODY),
            {"Content-Type": "application/json"},
        )

    def send(self, request, **kwargs):
        self.requests += 1
        if self.requests > 50:
            raise requests.ConnectionError("too many requests")
        rng = self.rng
        path = request.url.split("/v2/", 1)[-1]
        if request.url.startswith(TOKEN_REALM):
            return self._response(
                request,
                rng.choice([200] * 8 + [401, 500]),
                _mutated_json(
                    rng,
                    rng.choice(
                        [{"token": "t0k3n"}, {"access_token": "t0k3n"}]
                    ),
                    chance=0.8,
                ),
            )
        if "/manifests/" in path and request.method in ("GET", "HEAD"):
            if rng.random() < 0.1:
                return self._error(request, rng.choice([400, 500, 503]))
            headers = {
                "Content-Type": rng.choice(
                    [self.media_type, "text/plain", "", "a;b"]
                ),
                "Docker-Content-Digest": _digest_header(rng, self.tag_content),
            }
            return self._response(
                request,
                self.tag_status,
                self.tag_content if request.method == "GET" else b"",
                headers,
            )
        if "/manifests/" in path and request.method == "PUT":
            if rng.random() < 0.2:
                return self._error(request, rng.choice([400, 401, 500]))
            return self._response(
                request,
                201,
                headers={
                    "Docker-Content-Digest": _digest_header(
                        rng, request.body or b""
                    )
                },
            )
        if "/blobs/" in path:
            if rng.random() < 0.2:
                return self._error(request, rng.choice([404, 500]))
            return self._response(
                request, 200, _mutated_json(rng, _CONFIG, chance=0.7)
            )
        return self._error(request, 404)

    def close(self):
        pass


class StaticRegistryAdapter(FuzzRegistryAdapter):
    """Answers every request with one (status, headers, body); records
    the requests."""

    def __init__(self, status, headers=None, content=b""):
        BaseAdapter.__init__(self)
        self.answer = (status, headers or {}, content)
        self.urls = []

    def send(self, request, **kwargs):
        self.urls.append((request.method, request.url))
        status, headers, content = self.answer
        return self._response(request, status, content, headers)


def fuzzed_http_client(adapter):
    """A `RegistryHTTPClient` whose requests ``adapter`` answers."""
    http_client = FuzzedRegistryHTTPClient(
        registry_url=REGISTRY,
        image_name="fuzz/app",
        retry_policy=_no_retry_policy(),
    )
    http_client.mountAdapter(adapter)
    return http_client


class _FuzzedClientMixin:
    def mountAdapter(self, adapter):
        self.session.mount("http://", adapter)


class FuzzedRegistryHTTPClient(_FuzzedClientMixin, RegistryHTTPClient):
    pass


class FuzzedBearerTokenRegistryClient(
    _FuzzedClientMixin, BearerTokenRegistryClient
):
    pass


def _no_retry_policy():
    return RetryPolicy(attempts=2, sleep=lambda seconds: None)


def run_manifest_list_update(rng):
    """Merge a build's manifests into a fuzzed tag; return the digest."""
    http_client = fuzzed_http_client(FuzzRegistryAdapter(rng))
    children = [
        _entry(MediaType.OCI_MANIFEST, "new-amd", "amd64"),
        _entry(MediaType.OCI_MANIFEST, "new-arm", "arm64", "v8"),
    ][: rng.randint(1, 2)]
    client = OCIRegistryClient(parallelism=1, retry_policy=_no_retry_policy())
    try:
        return client._uploadManifestListToTag(http_client, "edge", children)
    finally:
        http_client.close()


_CHALLENGES = (
    f'Bearer realm="{TOKEN_REALM}",service="registry.fuzz.invalid",'
    f'scope="repository:fuzz/app:pull,push"'
)


def run_token_exchange(rng):
    """Answer a fuzzed 401 challenge, then make a request with the token."""
    adapter = FuzzRegistryAdapter(rng)
    http_client = FuzzedBearerTokenRegistryClient(
        registry_url=REGISTRY,
        image_name="fuzz/app",
        credentials={"username": "user", "password": "secret"},
        retry_policy=_no_retry_policy(),
    )
    http_client.mountAdapter(adapter)
    challenge = _CHALLENGES
    if rng.random() < 0.5:
        challenge = mutate_json_bytes(rng, challenge.encode()).decode(
            "latin-1"
        )
    unauthorized = requests.Response()
    unauthorized.status_code = 401
    unauthorized.headers = CaseInsensitiveDict({"WWW-Authenticate": challenge})
    try:
        http_client.authenticate(unauthorized)
        return http_client.requestPath("/manifests/edge", method="HEAD")
    finally:
        http_client.close()
