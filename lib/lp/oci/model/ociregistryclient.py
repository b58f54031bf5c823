# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Client for talking to an OCI registry.

What the push sends has the patched upstream shape (the project's patch
series, ``upstream/launchpad``):

- a build that filed an OCI upload (`IOCIRecipeBuild.index`) is read
  with `lp.oci.model.ocilayout` (`OCIRegistryClient._preloadOCIFiles`:
  the stored index and manifests, each manifest checked against its
  descriptor) and pushed as built: each image's layers, its config and
  its manifest, byte for byte as stored, the manifest by digest with
  its own media type;
- a legacy build (``digests.json``) has no stored manifest: one is made
  from what it stored (`legacy_image_manifest`: the config as stored,
  each layer file under its own sha256, serialised as upstream's
  ``json.dumps``), never with the ``sha256:sha256:`` prefix upstream
  produced; the archive export and ``lp-oci fetch`` make the same;
- a layer is mounted from another repository of the same registry
  (`OCIRegistryClient._findMountSource`): one this upload already
  pushed it to, else the one the build pulled it from (the index
  entry's `SOURCES_ANNOTATION`, or digests.json's ``source``), Docker
  Hub's host names counting as one; a registry that declines (``202``)
  starts an ordinary upload;
- the manifests uploaded are recorded with their media types, and the
  tag's multi-architecture index lists them under those types (an
  index listing an OCI manifest is an OCI image index; records without
  a media type, from before, are Docker manifests).

Harness only, around that shape (the push engine): go-containerregistry's
``remote.Write`` order with every layer pushed in parallel, a bounded
number at a time, then the configs, then the manifests, then
`uploadManifestList` merges them into the tag's index; for each blob,
once per digest, a ``HEAD`` first, then mounts from the candidates
above and from `IOCIPushedBlobSet` (where earlier pushes put it; a
record the registry contradicts is forgotten), then one streamed
``PUT`` from the librarian, after an interruption a new session in
``PATCH`` chunks that resumes from the registry's ``Range``; the
registry's ``Docker-Content-Digest`` must be ours; retries classified
by `RetryPolicy`; fault checkpoints ``push.blob`` and
``push.manifest``; configs and layers are checked against the sha256
the librarian recorded before they are pushed.

Everything that touches the database (the plan of what to push, the
credentials, the push records) happens in the calling thread; the
pushing threads only read librarian files and speak HTTP.
"""

__all__ = [
    "OCIRegistryClient",
    "RegistryUploadResult",
    "make_push_plan",
]

import json
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from urllib.parse import urlparse

import requests
from zope.component import getUtility
from zope.interface import implementer

from lp.app.errors import NotFoundError
from lp.buildmaster.enums import BuildStatus
from lp.oci.interfaces.ocipushedblob import IOCIPushedBlobSet
from lp.oci.interfaces.ociregistryclient import (
    BlobUploadFailed,
    IOCIRegistryClient,
    ManifestListUploadFailed,
    ManifestUploadFailed,
    MultipleOCIRegistryError,
    OCIRegistryError,
)
from lp.oci.interfaces.ociupload import OCIUploadError
from lp.oci.model.ocilayout import (
    MAX_DOCUMENT_SIZE,
    MEDIA_TYPE_DOCKER_MANIFEST,
    OCILayoutError,
    parse_index,
    parse_manifest,
)
from lp.oci.model.ociregistryhttp import (
    TRANSIENT_ERRORS,
    RegistryHTTPClient,
    RetryPolicy,
    is_retryable_status,
    parse_registry_errors,
    retry_after_of,
)
from lp.oci.model.ociupload import (
    check_oci_manifest,
    legacy_image_manifest,
    parse_json_document,
    parse_legacy_upload,
    read_library_file_bytes,
)
from lp.services.librarian.storage import get_librarian_storage
from lp.services.osutils import open_regular
from ocitypes.descriptor import MediaType
from ocitypes.digest import Digest
from ocitypes.faultpoint import checkpoint

log = logging.getLogger(__name__)

PARALLELISM_ENV = "LP_OCI_REGISTRY_PUSH_JOBS"
DEFAULT_PARALLELISM = 4
DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024
# How many times a lost race for the tag is tried again.
MANIFEST_LIST_ATTEMPTS = 8
# The least pause between writing the tag and reading it back.
TAG_SETTLE_SECONDS = 0.05
# How many known repositories a blob mount is tried from.
MAX_MOUNT_SOURCES = 3

MANIFEST_ACCEPT = ", ".join(
    [
        MediaType.OCI_INDEX,
        MediaType.DOCKER_MANIFEST_LIST,
        MediaType.OCI_MANIFEST,
        MediaType.DOCKER_MANIFEST,
    ]
)
DOCKER_MEDIA_TYPES = frozenset(
    {MediaType.DOCKER_MANIFEST, MediaType.DOCKER_MANIFEST_LIST}
)


@dataclass(frozen=True)
class BlobToPush:
    """A layer or config to push, and where its bytes are."""

    digest: Digest
    size: int
    sha256: str
    # The repository ("<registry>/<name>") the build pulled it from.
    source: str = None


@dataclass(frozen=True)
class ManifestToPush:
    """An image manifest to push, as stored."""

    digest: Digest
    media_type: str
    content: bytes
    platform: dict

    @property
    def descriptor(self):
        return {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": len(self.content),
            "platform": self.platform,
        }


@dataclass
class PushPlan:
    """What a build pushes: layers, configs, manifests (in that order)."""

    layers: list = field(default_factory=list)
    configs: list = field(default_factory=list)
    manifests: list = field(default_factory=list)


@dataclass
class RegistryUploadResult:
    """What pushing a build to one push rule did."""

    registry_url: str
    image_name: str
    blobs_uploaded: int = 0
    blobs_mounted: int = 0
    blobs_existing: int = 0
    bytes_uploaded: int = 0
    manifests: list = field(default_factory=list)
    tag: str = None
    seconds: float = 0.0
    # (repository, digest) of every mount the registry did not make.
    declined_mounts: list = field(default_factory=list)

    def __post_init__(self):
        self._lock = threading.Lock()

    def count(self, what, size=0):
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)
            if what == "blobs_uploaded":
                self.bytes_uploaded += size

    def to_json(self):
        return {
            "registry_url": self.registry_url,
            "image_name": self.image_name,
            "blobs_uploaded": self.blobs_uploaded,
            "blobs_mounted": self.blobs_mounted,
            "blobs_existing": self.blobs_existing,
            "bytes_uploaded": self.bytes_uploaded,
            "manifests": list(self.manifests),
            "tag": self.tag,
            "seconds": round(self.seconds, 3),
        }


class _TransientUploadError(Exception):
    """An upload was interrupted; a new attempt may succeed."""

    def __init__(self, message, response=None):
        super().__init__(message)
        self.response = response


class _UploadTooLarge(Exception):
    """The registry refused a blob in one request (413): send chunks."""


class _FileSlice:
    """``length`` bytes of a file from ``offset``, read as a stream."""

    def __init__(self, path, offset, length):
        # A librarian file: never a link out of the librarian.
        self._file = open_regular(path)
        self._file.seek(offset)
        self._remaining = length
        self._length = length

    def __len__(self):
        return self._length

    def read(self, size=-1):
        if self._remaining <= 0:
            return b""
        if size is None or size < 0 or size > self._remaining:
            size = self._remaining
        data = self._file.read(min(size, 1024 * 1024))
        self._remaining -= len(data)
        return data

    def close(self):
        self._file.close()


def _range_end(value):
    """The last byte a registry's ``Range`` header says it holds.

    ``0-N``; distribution says ``0--1`` for an empty upload: -1.
    """
    if not value:
        return -1
    value = value.strip()
    if value.startswith("bytes="):
        value = value[len("bytes=") :]
    try:
        start, end = value.split("-", 1)
        start, end = int(start), int(end)
    except ValueError:
        return -1
    if start != 0 or end < -1:
        return -1
    return end


def _json_bytes(value):
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _platform_of(config, fallback=None):
    """A manifest-list platform from an image config."""
    platform = {}
    if isinstance(config, dict):
        for key in ("architecture", "os", "variant", "os.version"):
            value = config.get(key)
            if isinstance(value, str) and value:
                platform[key] = value
    if "architecture" not in platform or "os" not in platform:
        if fallback is not None:
            return dict(fallback)
    return platform


def _digests_by_platform(entries):
    """Platform key to the digests ``entries`` list for it."""
    listed = {}
    for entry in entries:
        if entry.get("platform"):
            listed.setdefault(_platform_key(entry.get("platform")), set()).add(
                _str_field(entry, "digest")
            )
    return listed


def _platform_key(platform):
    # A registry's entries are read as they come: only strings count.
    platform = platform if isinstance(platform, dict) else {}
    system, architecture, variant = (
        value if isinstance(value, str) else None
        for value in (
            platform.get("os"),
            platform.get("architecture"),
            platform.get("variant"),
        )
    )
    if architecture == "arm64" and variant == "v8":
        variant = None
    return (system, architecture, variant)


def _str_field(entry, key):
    """``entry[key]`` if it is a string, else None."""
    value = entry.get(key)
    return value if isinstance(value, str) else None


def _annotation(entry, key):
    annotations = entry.get("annotations")
    if not isinstance(annotations, dict):
        return None
    return _str_field(annotations, key)


def _stored_file(build, digest, what):
    """The librarian file of a build's blob (harness only: checked).

    :param digest: "sha256:<hex>".
    """
    try:
        _, lfa, content = build.getLayerFileByDigest(digest)
    except NotFoundError:
        raise OCIUploadError(f"{what} {digest} is missing") from None
    if f"sha256:{content.sha256}" != digest:
        raise OCIUploadError(
            f"{what} {digest} has content with sha256 {content.sha256}"
        )
    return lfa


def _make_oci_plan(build):
    plan = PushPlan()
    seen = set()
    for manifest, config_lfa, layer_lfas in OCIRegistryClient._preloadOCIFiles(
        build
    ):
        # Harness only: stored before upload processing checked this.
        check_oci_manifest(manifest)
        sources = manifest.layer_sources
        for layer, lfa in zip(manifest.layers, layer_lfas):
            if layer.digest in seen:
                continue
            seen.add(layer.digest)
            plan.layers.append(
                BlobToPush(
                    Digest.parse(layer.digest),
                    lfa.content.filesize,
                    lfa.content.sha256,
                    sources.get(layer.digest),
                )
            )
        config = manifest.config
        # Harness only: the platform of the image for the tag's index.
        config_json = parse_json_document(
            read_library_file_bytes(config_lfa, config.digest), config.digest
        )
        if config.digest not in seen:
            seen.add(config.digest)
            plan.configs.append(
                BlobToPush(
                    Digest.parse(config.digest), config.size, config.hex
                )
            )
        plan.manifests.append(
            ManifestToPush(
                Digest.parse(manifest.descriptor.digest),
                manifest.descriptor.media_type,
                manifest.data,
                _platform_of(config_json, manifest.descriptor.platform),
            )
        )
    return plan


def _make_legacy_plan(build):
    plan = PushPlan()
    manifest = build.manifest_data
    digests = build.digests_data
    if manifest is None or digests is None:
        raise OCIUploadError(
            "The build has neither index.json nor digests.json"
        )
    seen = set()
    images = parse_legacy_upload(manifest, digests)
    for image in images:
        try:
            config_lfa = build.getFileByName(image.config_name)
        except NotFoundError:
            raise OCIUploadError(
                f"Config {image.config_name} is missing"
            ) from None
        # Bounded, and checked against the sha256 recorded at upload: a
        # damaged config must not be pushed under a digest of its own.
        config_bytes = read_library_file_bytes(config_lfa, image.config_name)
        config = parse_json_document(config_bytes, image.config_name)

        def stored_layer(layer):
            # The file the builder made (or the librarian file reused
            # for it, named as another build named it), recorded under
            # the layer's digest; for a pulled layer digests.json has
            # the registry's digest of another file.
            try:
                _, _, content = build.getLayerFileByDigest(layer.digest)
            except NotFoundError:
                raise OCIUploadError(
                    f"Layer {layer.digest} ({layer.diff_id}) is missing"
                ) from None
            return content.sha256, content.filesize

        made = legacy_image_manifest(config_bytes, config, image, stored_layer)
        for descriptor, layer in made.layers:
            if descriptor.digest not in seen:
                seen.add(descriptor.digest)
                plan.layers.append(
                    BlobToPush(
                        descriptor.digest,
                        descriptor.size,
                        descriptor.digest.hex,
                        layer.source,
                    )
                )
        if made.config.digest not in seen:
            seen.add(made.config.digest)
            plan.configs.append(
                BlobToPush(
                    made.config.digest,
                    made.config.size,
                    made.config.digest.hex,
                )
            )
        plan.manifests.append(
            ManifestToPush(
                made.descriptor.digest,
                MediaType.DOCKER_MANIFEST,
                made.content,
                _platform_of(
                    config, {"architecture": build.arch_tag, "os": "linux"}
                ),
            )
        )
    return plan


def make_push_plan(build):
    """What pushing ``build`` sends, read from what it stored.

    :raises OCIUploadError: if the stored upload cannot be pushed.
    """
    if build.index is not None:
        # The build filed an OCI image layout.
        try:
            return _make_oci_plan(build)
        except OCILayoutError as e:
            raise OCIUploadError(str(e)) from None
    return _make_legacy_plan(build)


@implementer(IOCIRegistryClient)
class OCIRegistryClient:
    """See `IOCIRegistryClient`.

    :param parallelism: how many blobs are pushed at once (default
        ``$LP_OCI_REGISTRY_PUSH_JOBS`` or 4).
    :param chunk_size: the size of ``PATCH`` chunks after an interrupted
        upload.
    :param retry_policy: a `RetryPolicy` for every request.
    """

    def __init__(
        self,
        parallelism=None,
        chunk_size=DEFAULT_CHUNK_SIZE,
        retry_policy=None,
        http_client_factory=None,
    ):
        if parallelism is None:
            try:
                parallelism = int(os.environ.get(PARALLELISM_ENV, ""))
            except ValueError:
                # Circular import.
                from lp.services.config import config

                parallelism = (
                    config.oci.registry_push_parallelism or DEFAULT_PARALLELISM
                )
        self.parallelism = max(1, parallelism)
        self.chunk_size = chunk_size
        self.retry_policy = retry_policy or RetryPolicy()
        self.http_client_factory = (
            http_client_factory or RegistryHTTPClient.getInstance
        )

    def _getHTTPClient(self, push_rule):
        return self.http_client_factory(
            push_rule, retry_policy=self.retry_policy
        )

    @staticmethod
    def _makeRegistryError(error_class, summary, response):
        errors = parse_registry_errors(response)
        if errors:
            summary = "{}: {}".format(
                summary,
                "; ".join(
                    "{} {}".format(e.get("code", ""), e.get("message", ""))
                    for e in errors
                ),
            )
        else:
            summary = f"{summary}: {response.status_code}"
        return error_class(
            summary,
            errors,
            transient=is_retryable_status(response.status_code),
            retry_after=retry_after_of(response),
        )

    @staticmethod
    def _checkDigest(response, digest, what):
        header = response.headers.get("Docker-Content-Digest")
        if header is not None and header.strip() != str(digest):
            raise BlobUploadFailed(
                f"The registry says {what} {digest} has digest "
                f"{header.strip()[:100]}"
            )

    # Blobs.

    def _blobExists(self, http_client, blob):
        response = http_client.requestPath(
            f"/blobs/{blob.digest}", method="HEAD"
        )
        if response.status_code == 200:
            self._checkDigest(response, blob.digest, "blob")
            return True
        if response.status_code == 404:
            return False
        raise self._makeRegistryError(
            BlobUploadFailed,
            f"Cannot check blob {blob.digest}",
            response,
        )

    def _mount(self, http_client, blob, source):
        """Try to mount ``blob`` from ``source``.

        :return: (True, None) if mounted; (False, upload location) if
            the registry declined and opened an upload instead; (False,
            None) if it refused.
        """
        response = http_client.requestPath(
            "/blobs/uploads/",
            method="POST",
            params={"mount": str(blob.digest), "from": source},
            mount_from=source,
        )
        if response.status_code == 201:
            self._checkDigest(response, blob.digest, "mounted blob")
            return True, None
        if response.status_code == 202 and "Location" in response.headers:
            return False, response.headers["Location"]
        log.info(
            "Mounting %s from %s answered %d",
            blob.digest,
            source,
            response.status_code,
        )
        return False, None

    def _startUpload(self, http_client):
        response = http_client.requestPath("/blobs/uploads/", method="POST")
        if response.status_code != 202 or "Location" not in response.headers:
            raise self._makeRegistryError(
                BlobUploadFailed, "Cannot start a blob upload", response
            )
        return response.headers["Location"]

    def _finishUpload(self, http_client, blob, location, body=None):
        def opener():
            return body() if body is not None else b""

        try:
            response = http_client.request(
                http_client.absoluteURL(location),
                "PUT",
                body=opener,
                retry=False,
                params={"digest": str(blob.digest)},
                headers={"Content-Type": "application/octet-stream"},
            )
        except TRANSIENT_ERRORS as e:
            raise _TransientUploadError(
                f"PUT of {blob.digest} failed: {e.__class__.__name__}"
            ) from None
        if response.status_code in (201, 204):
            self._checkDigest(response, blob.digest, "blob")
            return
        if response.status_code == 413 and body is not None:
            raise _UploadTooLarge()
        if is_retryable_status(response.status_code):
            raise _TransientUploadError(
                f"PUT of {blob.digest} answered {response.status_code}",
                response,
            )
        raise self._makeRegistryError(
            BlobUploadFailed, f"Upload of blob {blob.digest} failed", response
        )

    def _uploadStatus(self, http_client, location):
        """The next offset of an upload session, and its location."""
        response = http_client.request(http_client.absoluteURL(location))
        if response.status_code != 204:
            raise _TransientUploadError(
                f"Upload session lost ({response.status_code})", response
            )
        offset = _range_end(response.headers.get("Range")) + 1
        return offset, response.headers.get("Location", location)

    def _uploadChunked(self, http_client, blob, location, path):
        policy = http_client.retry_policy
        offset = 0
        cuts = 0
        # PATCHes the registry took without holding any more of the blob.
        stalls = 0
        while offset < blob.size:
            length = min(self.chunk_size, blob.size - offset)
            start = offset
            try:
                response = http_client.request(
                    http_client.absoluteURL(location),
                    "PATCH",
                    body=lambda: _FileSlice(path, start, length),
                    retry=False,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{start}-{start + length - 1}",
                    },
                )
            except TRANSIENT_ERRORS:
                response = None
            if response is not None and response.status_code == 202:
                location = response.headers.get("Location", location)
                if response.headers.get("Range"):
                    offset = _range_end(response.headers["Range"]) + 1
                else:
                    offset = start + length
                if offset <= start:
                    stalls += 1
                    if stalls >= policy.attempts:
                        raise _TransientUploadError(
                            f"Upload of {blob.digest} made no progress "
                            f"past byte {offset} in {stalls} PATCHes",
                            response,
                        )
                    policy.wait(stalls, response)
                continue
            if response is not None and not is_retryable_status(
                response.status_code
            ):
                raise self._makeRegistryError(
                    BlobUploadFailed,
                    f"Upload of blob {blob.digest} failed",
                    response,
                )
            # Cut or refused for now: ask the registry where it is.
            cuts += 1
            if cuts >= policy.attempts:
                raise _TransientUploadError(
                    f"Upload of {blob.digest} interrupted {cuts} times",
                    response,
                )
            policy.wait(cuts, response)
            offset, location = self._uploadStatus(http_client, location)
            log.info("Resuming upload of %s at %d", blob.digest, offset)
        self._finishUpload(http_client, blob, location)

    def _uploadBlob(self, http_client, blob, path, result, location=None):
        policy = http_client.retry_policy
        chunked = False
        attempt = 0
        while True:
            attempt += 1
            try:
                if location is None:
                    location = self._startUpload(http_client)
                if chunked:
                    self._uploadChunked(http_client, blob, location, path)
                else:
                    self._finishUpload(
                        http_client,
                        blob,
                        location,
                        body=lambda: _FileSlice(path, 0, blob.size),
                    )
                result.count("blobs_uploaded", blob.size)
                return
            except _UploadTooLarge:
                if attempt >= policy.attempts:
                    raise BlobUploadFailed(
                        f"Upload of blob {blob.digest} failed: the "
                        "registry answered 413",
                    ) from None
                # As skopeo streams: the same bytes in chunks, at once.
                log.info(
                    "%s is too large for one PUT; sending it in chunks",
                    blob.digest,
                )
                location = None
                chunked = True
            except _TransientUploadError as e:
                if attempt >= policy.attempts:
                    raise BlobUploadFailed(
                        f"Upload of blob {blob.digest} failed: {e}",
                        transient=True,
                    ) from None
                log.info("%s; starting again in chunks", e)
                location = None
                chunked = True
                policy.wait(attempt, e.response)

    def _pushBlob(self, http_client, blob, sources, storage, result, abort):
        """Push one blob: exists, mount, or upload.  Runs in a thread."""
        if abort.is_set():
            # Another blob failed: the push has failed.
            return
        checkpoint("push.blob")
        try:
            if self._blobExists(http_client, blob):
                result.count("blobs_existing")
                return
            location = None
            for source in sources:
                mounted, location = self._mount(http_client, blob, source)
                if mounted:
                    result.count("blobs_mounted")
                    return
                # list.append is atomic: the pushing threads share it.
                result.declined_mounts.append((source, blob.digest))
                if location is not None:
                    break
            self._uploadBlob(
                http_client,
                blob,
                storage.getPath(blob.sha256),
                result,
                location=location,
            )
        except TRANSIENT_ERRORS as e:
            raise BlobUploadFailed(
                f"Push of blob {blob.digest} failed: {e.__class__.__name__}",
                transient=True,
            ) from None
        except requests.RequestException:
            raise
        except OSError as e:
            # The librarian's file: missing, or not a regular file.
            raise BlobUploadFailed(
                f"Cannot read blob {blob.digest} from the librarian: {e}"
            ) from None

    def _pushBlobs(self, http_client, blobs, sources, result):
        if not blobs:
            return
        storage = get_librarian_storage()
        abort = threading.Event()
        with ThreadPoolExecutor(
            max_workers=min(self.parallelism, len(blobs)),
            thread_name_prefix="registry-push",
        ) as executor:
            futures = [
                executor.submit(
                    self._pushBlob,
                    http_client,
                    blob,
                    sources.get(blob.digest, ()),
                    storage,
                    result,
                    abort,
                )
                for blob in blobs
            ]
            done, _ = wait(futures, return_when="FIRST_EXCEPTION")
            failed = [f for f in done if f.exception() is not None]
            if failed:
                abort.set()
                for future in futures:
                    future.cancel()
                raise failed[0].exception()

    # Manifests.

    def _putManifest(self, http_client, reference, media_type, content):
        digest = Digest.of_bytes(content)
        checkpoint("push.manifest")
        response = http_client.requestPath(
            f"/manifests/{reference}",
            method="PUT",
            body=content,
            headers={"Content-Type": media_type},
        )
        if response.status_code != 201:
            raise self._makeRegistryError(
                ManifestUploadFailed,
                f"Failed to upload manifest {reference} to "
                f"{http_client.registry_url} {http_client.image_name}",
                response,
            )
        header = response.headers.get("Docker-Content-Digest")
        if header is not None and header.strip() != str(digest):
            raise ManifestUploadFailed(
                f"The registry says manifest {digest} has digest "
                f"{header.strip()[:100]}"
            )
        return digest

    @classmethod
    def _preloadOCIFiles(cls, build):
        """Read the index and manifests of a build that filed an OCI upload.

        :return: A list of (`OCIImageManifest`, config `LibraryFileAlias`,
            list of layer `LibraryFileAlias`es).
        """
        images = []
        index = read_library_file_bytes(build.index, "index.json")
        for descriptor in parse_index(index):
            lfa = _stored_file(build, descriptor.digest, "Manifest")
            manifest = parse_manifest(
                read_library_file_bytes(lfa, descriptor.digest), descriptor
            )
            config_lfa = _stored_file(build, manifest.config.digest, "Config")
            layer_lfas = [
                _stored_file(build, layer.digest, "Layer")
                for layer in manifest.layers
            ]
            images.append((manifest, config_lfa, layer_lfas))
        return images

    # Docker Hub's registry answers under several names.
    _docker_hub_hosts = {
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "registry.hub.docker.com",
    }

    @classmethod
    def _getRegistryHost(cls, host):
        host = host.lower()
        return "docker.io" if host in cls._docker_hub_hosts else host

    @classmethod
    def _findMountSource(cls, push_rule, digest, source, uploaded_blobs):
        """Find another repository of the push rule's registry with a blob.

        That is one to which this upload has already pushed the blob, or
        else the one the build pulled the layer from, if it is on the
        same registry.

        :param source: The repository the build pulled the layer from, as
            "<registry>/<name>", or None.
        :param uploaded_blobs: A dict mapping (registry URL, digest) to
            the image name that this upload pushed the blob to.
        :return: A repository name, or None.
        """
        image_name = uploaded_blobs.get((push_rule.registry_url, digest))
        if image_name is not None and image_name != push_rule.image_name:
            return image_name
        if source and "/" in source:
            host, name = source.split("/", 1)
            registry_host = urlparse(push_rule.registry_url).netloc
            if (
                cls._getRegistryHost(host)
                == cls._getRegistryHost(registry_host)
                and name != push_rule.image_name
            ):
                return name
        return None

    def _uploadToPushRule(self, push_rule, plan, http_client, uploaded_blobs):
        result = RegistryUploadResult(
            push_rule.registry_url, push_rule.image_name
        )
        started = time.monotonic()
        pushed_blobs = getUtility(IOCIPushedBlobSet)
        sources = {}
        recorded = {}
        for blob in plan.layers:
            candidates = []
            mount_from = self._findMountSource(
                push_rule, str(blob.digest), blob.source, uploaded_blobs
            )
            if mount_from is not None:
                candidates.append(mount_from)
            # Harness only: where earlier pushes put the blob.
            known = pushed_blobs.findRepositories(
                push_rule.registry_url,
                blob.digest,
                exclude=push_rule.image_name,
            )
            recorded[blob.digest] = known
            for repository in known:
                if repository not in candidates:
                    candidates.append(repository)
            sources[blob.digest] = tuple(candidates[:MAX_MOUNT_SOURCES])
        self._pushBlobs(http_client, plan.layers, sources, result)
        for blob in plan.layers:
            uploaded_blobs[(push_rule.registry_url, str(blob.digest))] = (
                push_rule.image_name
            )
        self._pushBlobs(http_client, plan.configs, {}, result)
        # A push record the registry contradicted (it no longer has the
        # blob there: deleted, garbage-collected, or the repository is
        # gone) is dropped, so that no later push tries it again.
        for source, digest in result.declined_mounts:
            if source in recorded.get(digest, ()):
                pushed_blobs.forget(push_rule.registry_url, source, digest)
        for blob in plan.layers + plan.configs:
            pushed_blobs.record(
                push_rule.registry_url,
                push_rule.image_name,
                blob.digest,
                blob.size,
            )
        for manifest in plan.manifests:
            self._putManifest(
                http_client,
                str(manifest.digest),
                manifest.media_type,
                manifest.content,
            )
            result.manifests.append(manifest.descriptor)
        result.seconds = time.monotonic() - started
        return result

    def upload(self, build):
        """See `IOCIRegistryClient`."""
        plan = make_push_plan(build)
        # Layers pushed to one repository can be mounted into the others
        # of the same registry.
        uploaded_blobs = {}
        results = {}
        exceptions = []
        for push_rule in build.recipe.push_rules:
            http_client = None
            try:
                http_client = self._getHTTPClient(push_rule)
                results[push_rule.id] = self._uploadToPushRule(
                    push_rule, plan, http_client, uploaded_blobs
                )
            except (OCIRegistryError, OCIUploadError) as e:
                exceptions.append(e)
            except requests.RequestException as e:
                exceptions.append(
                    OCIRegistryError(
                        f"Push to {push_rule.registry_url} failed: "
                        f"{e.__class__.__name__}",
                        transient=True,
                    )
                )
            finally:
                if http_client is not None:
                    http_client.close()
        if len(exceptions) == 1:
            raise exceptions[0]
        elif exceptions:
            raise MultipleOCIRegistryError(exceptions)
        return results

    # Manifest lists.

    @classmethod
    def _calculateTags(cls, recipe):
        """The tags a recipe's builds are pushed under.

        Upstream adds ``<branch>_edge`` for recipes built from a
        branch; recipes here have no Git reference.
        """
        return ["edge"]

    def _getCurrentRegistryManifest(self, http_client, tag):
        """The tag's current manifest: (document, media type, digest).

        :return: (None, None, None, 0) if the tag does not exist.
        """
        response = http_client.requestPath(
            f"/manifests/{tag}",
            headers={"Accept": MANIFEST_ACCEPT},
            max_body=MAX_DOCUMENT_SIZE,
        )
        if response.status_code == 404:
            return None, None, None, 0
        if response.status_code != 200:
            raise self._makeRegistryError(
                ManifestListUploadFailed,
                f"Cannot read tag {tag} of {http_client.image_name}",
                response,
            )
        content = response.content
        try:
            document = json.loads(content)
        except ValueError:
            document = None
        media_type = response.headers.get("Content-Type", "").split(";")[0]
        if isinstance(document, dict) and _str_field(document, "mediaType"):
            media_type = document["mediaType"]
        return document, media_type, Digest.of_bytes(content), len(content)

    def _headTag(self, http_client, tag):
        response = http_client.requestPath(
            f"/manifests/{tag}",
            method="HEAD",
            headers={"Accept": MANIFEST_ACCEPT},
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._makeRegistryError(
                ManifestListUploadFailed, f"Cannot read tag {tag}", response
            )
        header = response.headers.get("Docker-Content-Digest")
        try:
            return Digest.parse(header.strip()) if header else None
        except ValueError:
            raise ManifestListUploadFailed(
                f"The registry gave tag {tag} a malformed digest "
                f"{header.strip()[:100]!r}"
            ) from None

    def _existingEntries(
        self, http_client, document, media_type, digest, size
    ):
        """The entries to merge into, from the tag's current manifest."""
        if not isinstance(document, dict):
            return [], {}
        if media_type in MediaType.INDEXES:
            entries = document.get("manifests")
            annotations = document.get("annotations")
            return (
                [
                    e
                    for e in (entries if isinstance(entries, list) else [])
                    if isinstance(e, dict)
                ],
                annotations if isinstance(annotations, dict) else {},
            )
        if media_type in MediaType.MANIFESTS:
            # A single image at the tag: keep it as its platform's entry.
            config = document.get("config")
            platform = None
            try:
                config_digest = Digest.parse(
                    config.get("digest") if isinstance(config, dict) else None
                )
            except ValueError:
                config_digest = None
            if config_digest is not None:
                response = http_client.requestPath(
                    f"/blobs/{config_digest}", max_body=MAX_DOCUMENT_SIZE
                )
                if response.status_code == 200:
                    try:
                        platform = _platform_of(response.json())
                    except ValueError:
                        platform = None
            if platform:
                return [
                    {
                        "mediaType": media_type,
                        "digest": str(digest),
                        "size": size,
                        "platform": platform,
                    }
                ], {}
        return [], {}

    def makeMultiArchManifest(self, current_entries, annotations, children):
        """The image index for ``children`` merged into the current ones.

        Entries of other platforms are kept; an entry for a child's
        platform is replaced, and attestations of replaced manifests
        dropped.  Each child is listed under the media type recorded
        with it when it was uploaded.  An index listing an OCI manifest
        is an OCI image index; harness only: so is one listing anything
        but Docker manifests, and one listing only Docker manifests is a
        Docker manifest list.
        """
        replaced = {_platform_key(child["platform"]) for child in children}
        removed = set()
        entries = []
        for entry in current_entries:
            platform = entry.get("platform")
            if platform and _platform_key(platform) in replaced:
                if _str_field(entry, "digest"):
                    removed.add(entry["digest"])
                continue
            entries.append(entry)
        # Attestations of the manifests replaced describe nothing now.
        entries = [
            entry
            for entry in entries
            if _annotation(entry, "vnd.docker.reference.digest") not in removed
        ]
        entries.extend(dict(child) for child in children)
        if all(
            _str_field(entry, "mediaType") in DOCKER_MEDIA_TYPES
            for entry in entries
        ):
            return {
                "schemaVersion": 2,
                "mediaType": MediaType.DOCKER_MANIFEST_LIST,
                "manifests": entries,
            }
        index = {
            "schemaVersion": 2,
            "mediaType": MediaType.OCI_INDEX,
            "manifests": entries,
        }
        if annotations:
            index["annotations"] = annotations
        return index

    def _beforeTagUpdate(self, http_client, tag):
        """A hook for tests: called between reading and checking the tag."""

    def _missingFromTag(self, http_client, tag, children, before):
        """The ``children`` the tag does not list, read back, and the
        tag's digest.

        A child whose platform the tag lists under a digest it did not
        list there before this push (``before``: platform key to the
        digests the tag held for it) is not missing: another push
        replaced it, as a later build does.  The entry this push
        replaced, written back by another pusher, does not count.
        """
        document, media_type, digest, _ = self._getCurrentRegistryManifest(
            http_client, tag
        )
        entries = []
        if isinstance(document, dict) and media_type in MediaType.INDEXES:
            manifests = document.get("manifests")
            if isinstance(manifests, list):
                entries = [e for e in manifests if isinstance(e, dict)]
        listed = {_str_field(entry, "digest") for entry in entries}
        if digest is not None:
            listed.add(str(digest))
        replaced = _digests_by_platform(entries)
        missing = [
            child
            for child in children
            if child["digest"] not in listed
            and not (
                replaced.get(_platform_key(child["platform"]), set())
                - before.get(_platform_key(child["platform"]), set())
            )
        ]
        return missing, digest

    def _uploadManifestListToTag(self, http_client, tag, children):
        """Merge ``children`` into the tag's index; return its digest.

        A registry has no compare-and-swap: the tag is checked unchanged
        (``HEAD``) just before it is written, then, after a pause longer
        than that check took, read back; if another pusher wrote over
        it meanwhile without these entries, they are merged again, at
        most `MANIFEST_LIST_ATTEMPTS` rounds in all.
        """
        for _ in range(MANIFEST_LIST_ATTEMPTS):
            current = self._getCurrentRegistryManifest(http_client, tag)
            document, media_type, digest, size = current
            entries, annotations = self._existingEntries(
                http_client, document, media_type, digest, size
            )
            before = _digests_by_platform(entries)
            index = self.makeMultiArchManifest(entries, annotations, children)
            content = _json_bytes(index)
            index_digest = Digest.of_bytes(content)
            if digest != index_digest:
                # By digest first, so that only the tag's PUT is left
                # after the check.
                self._putManifest(
                    http_client,
                    str(index_digest),
                    index["mediaType"],
                    content,
                )
            self._beforeTagUpdate(http_client, tag)
            checked = time.monotonic()
            current = self._headTag(http_client, tag)
            if current != digest:
                log.info("Tag %s changed while merging; reading again", tag)
                continue
            if digest != index_digest:
                self._putManifest(
                    http_client, tag, index["mediaType"], content
                )
            # Another pusher that checked the tag before this one wrote
            # it writes within about as long.
            elapsed = time.monotonic() - checked
            time.sleep(
                min(max(TAG_SETTLE_SECONDS, 2 * elapsed), 5.0)
                * random.uniform(1.0, 1.5)
            )
            missing, digest = self._missingFromTag(
                http_client, tag, children, before
            )
            if not missing:
                return digest
            log.info(
                "Tag %s lost %s while it was written; merging again",
                tag,
                ", ".join(child["digest"] for child in missing),
            )
        raise ManifestListUploadFailed(
            f"Tag {tag} of {http_client.image_name} kept changing while "
            "its manifest list was updated",
            transient=True,
        )

    @staticmethod
    def pushedNewerBuild(build):
        """A more recent build of ``build``'s recipe and processor whose
        push completed, or None.

        Superseding is about pushes: a newer build that was only built
        (``lp-oci run`` without ``--registry``, or one whose own push is
        still waiting or failed) leaves the registry's tag as it was, so
        an older build's waiting push must still happen.
        """
        # Circular import.
        from lp.oci.model.ocirecipebuild import OCIRecipeBuild
        from lp.services.database.interfaces import IStore
        from lp.services.job.interfaces.job import JobStatus

        newer = IStore(OCIRecipeBuild).find(
            OCIRecipeBuild,
            OCIRecipeBuild.recipe_id == build.recipe_id,
            OCIRecipeBuild.processor_id == build.processor_id,
            OCIRecipeBuild.status.is_in(
                [BuildStatus.FULLYBUILT, BuildStatus.SUPERSEDED]
            ),
            OCIRecipeBuild.date_created > build.date_created,
        )
        for candidate in newer.order_by(OCIRecipeBuild.id):
            job = candidate.last_registry_upload_job
            if job is not None and job.job.status == JobStatus.COMPLETED:
                return candidate
        return None

    @classmethod
    def updateSupersededBuilds(cls, build):
        """Mark ``build`` SUPERSEDED if a newer build of it was pushed.

        Only then does the registry hold the tag this build's push would
        set (see `pushedNewerBuild`).

        :return: True if the build is superseded.
        """
        if build.status == BuildStatus.SUPERSEDED:
            return True
        if cls.pushedNewerBuild(build) is not None:
            build.updateStatus(
                BuildStatus.SUPERSEDED,
                force_invalid_transition=(
                    build.status == BuildStatus.FULLYBUILT
                ),
            )
            return True
        return False

    def uploadManifestList(self, build_request, uploaded_builds, tags=None):
        """See `IOCIRegistryClient`.

        :param tags: the tags to update (default: `_calculateTags`).
        :return: {push rule id: {tag: digest}}.
        """
        uploaded_builds = [
            build
            for build in uploaded_builds
            if not self.updateSupersededBuilds(build)
        ]
        if not uploaded_builds:
            return {}
        recipe = uploaded_builds[0].recipe
        tags = tags or self._calculateTags(recipe)
        digests = {}
        exceptions = []
        for push_rule in recipe.push_rules:
            children = []
            for build in uploaded_builds:
                job = build.last_registry_upload_job
                manifests = (job.uploaded_manifests if job else {}).get(
                    str(push_rule.id), []
                )
                # Builds that filed an OCI upload record their manifests'
                # media types; those before them pushed Docker manifests.
                children.extend(
                    dict(
                        manifest,
                        mediaType=manifest.get(
                            "mediaType", MEDIA_TYPE_DOCKER_MANIFEST
                        ),
                    )
                    for manifest in manifests
                )
            if not children:
                continue
            http_client = None
            try:
                http_client = self._getHTTPClient(push_rule)
                digests[push_rule.id] = {
                    tag: self._uploadManifestListToTag(
                        http_client, tag, children
                    )
                    for tag in tags
                }
            except OCIRegistryError as e:
                exceptions.append(e)
            except requests.RequestException as e:
                exceptions.append(
                    ManifestListUploadFailed(
                        f"Manifest list push to {push_rule.registry_url} "
                        f"failed: {e.__class__.__name__}",
                        transient=True,
                    )
                )
            finally:
                if http_client is not None:
                    http_client.close()
        if len(exceptions) == 1:
            raise exceptions[0]
        elif exceptions:
            raise MultipleOCIRegistryError(exceptions)
        return digests
