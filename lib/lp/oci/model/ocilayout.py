# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Read the OCI image layouts that builders upload.

Asked for an OCI upload (`"upload_format": "oci"` in the build
arguments), launchpad-buildd files an OCI image layout: `oci-layout`,
`index.json` with one entry per image manifest, and every blob under the
name `blobs-sha256-<hex>` (see `blob_file_name`).  The build farm reads
the documents to know which layers to fetch, the upload processor reads
them again to store the build's files, and the registry upload job reads
the stored index and manifests to push them: all three go through this
module, which checks everything it reads.  Documents are bounded in
size and checked against the digest and size that refer to them, and
only sha256 digests are accepted.  A descriptor's `urls` (those of a
foreign, non-distributable layer) reach whoever pulls the image, since
manifests are pushed as built: only https URLs of public hosts are
accepted.

This module imports nothing from the rest of Launchpad.
"""

__all__ = [
    "MAX_DOCUMENT_SIZE",
    "MEDIA_TYPE_DOCKER_MANIFEST",
    "MEDIA_TYPE_OCI_MANIFEST",
    "OCIDescriptor",
    "OCIImageManifest",
    "OCILayoutError",
    "SOURCES_ANNOTATION",
    "blob_file_name",
    "check_blob",
    "check_file",
    "parse_index",
    "parse_manifest",
    "parse_oci_layout",
    "read_upload",
]

import hashlib
import ipaddress
import json
import os
import re
from urllib.parse import urlsplit

# Registries must accept manifests of up to 4 MiB; documents larger than
# that are refused.
MAX_DOCUMENT_SIZE = 4 * 1024 * 1024

MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_DOCKER_MANIFEST = (
    "application/vnd.docker.distribution.manifest.v2+json"
)
MANIFEST_MEDIA_TYPES = (MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST)

# On an entry of the upload's index.json: a JSON object mapping layer
# digests to the repository ("<registry>/<name>") each was pulled from.
SOURCES_ANNOTATION = "com.canonical.launchpad.oci.layer-sources"

DIGEST_RE = re.compile(r"^sha256:([0-9a-f]{64})$")

# Host names that never name a public server (RFC 6761, RFC 8375, and
# those that cloud metadata services answer to).
PRIVATE_HOST_SUFFIXES = (
    "localhost",
    "localdomain",
    "local",
    "internal",
    "lan",
    "home.arpa",
)


class OCILayoutError(Exception):
    """An OCI upload is not what it should be; the message says why."""


def blob_file_name(digest):
    """The name under which the builder files the blob with `digest`."""
    return "blobs-sha256-%s" % _check_digest(digest)


def _check_digest(digest):
    """Return the hex part of a sha256 digest, refusing anything else."""
    match = DIGEST_RE.match(digest) if isinstance(digest, str) else None
    if match is None:
        raise OCILayoutError("Not a sha256 digest: %r" % (digest,))
    return match.group(1)


def _is_public_https_url(url):
    """Is `url` an https URL of a public host?

    Host names are not resolved: what a public name resolves to is its
    owner's business.  Loopback, link-local (such as the cloud metadata
    address 169.254.169.254), private and other special addresses are
    refused, and so are single-label and special-use names.
    """
    if not isinstance(url, str) or not url.isprintable():
        return False
    try:
        parsed = urlsplit(url)
        host = parsed.hostname
        parsed.port
    except ValueError:
        return False
    if (
        parsed.scheme != "https"
        or not host
        or parsed.username is not None
        or parsed.password is not None
    ):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return address.is_global and not address.is_multicast
    labels = host.rstrip(".").split(".")
    name = ".".join(labels)
    # A last label that does not start with a letter makes an address to
    # some resolvers ("127.1", "0x7f.1").
    return (
        len(labels) > 1
        and re.match(r"^[a-z][a-z0-9-]*$", labels[-1]) is not None
        and not any(
            name == suffix or name.endswith("." + suffix)
            for suffix in PRIVATE_HOST_SUFFIXES
        )
    )


class OCIDescriptor:
    """A checked OCI content descriptor."""

    def __init__(
        self, media_type, digest, size, platform=None, annotations=None
    ):
        self.media_type = media_type
        self.digest = digest
        self.size = size
        self.platform = platform
        self.annotations = annotations or {}

    @property
    def hex(self):
        return self.digest.split(":", 1)[1]

    @property
    def file_name(self):
        return blob_file_name(self.digest)

    @classmethod
    def fromJSON(cls, value, what):
        """Check a descriptor read from a document."""
        if not isinstance(value, dict):
            raise OCILayoutError("%s is not a descriptor" % what)
        media_type = value.get("mediaType")
        size = value.get("size")
        platform = value.get("platform")
        annotations = value.get("annotations")
        _check_digest(value.get("digest"))
        if not isinstance(media_type, str):
            raise OCILayoutError("%s has no media type" % what)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise OCILayoutError("%s has no valid size" % what)
        if platform is not None and not (
            isinstance(platform, dict)
            and all(isinstance(v, str) for v in platform.values())
        ):
            raise OCILayoutError("%s has an invalid platform" % what)
        if annotations is not None and not (
            isinstance(annotations, dict)
            and all(isinstance(v, str) for v in annotations.values())
        ):
            raise OCILayoutError("%s has invalid annotations" % what)
        urls = value.get("urls")
        if urls is not None and not (
            isinstance(urls, list) and all(map(_is_public_https_url, urls))
        ):
            raise OCILayoutError(
                "%s has URLs that are not all https URLs of public hosts"
                % what
            )
        return cls(media_type, value["digest"], size, platform, annotations)

    def toJSON(self):
        value = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform is not None:
            value["platform"] = self.platform
        if self.annotations:
            value["annotations"] = self.annotations
        return value

    def __repr__(self):
        return "<OCIDescriptor %s %s %d>" % (
            self.media_type,
            self.digest,
            self.size,
        )


def check_blob(data, descriptor):
    """Check that `data` is the blob that `descriptor` describes."""
    if len(data) != descriptor.size:
        raise OCILayoutError(
            "%s is %d bytes, not %d"
            % (descriptor.digest, len(data), descriptor.size)
        )
    if hashlib.sha256(data).hexdigest() != descriptor.hex:
        raise OCILayoutError(
            "%s does not match its digest" % descriptor.file_name
        )


def _load_document(data, what):
    if len(data) > MAX_DOCUMENT_SIZE:
        raise OCILayoutError("%s is too large" % what)
    try:
        document = json.loads(data)
    except ValueError as e:
        raise OCILayoutError("%s is not valid JSON: %s" % (what, e))
    except RecursionError:
        raise OCILayoutError("%s is nested too deeply" % what)
    if not isinstance(document, dict):
        raise OCILayoutError("%s is not a JSON object" % what)
    return document


def parse_oci_layout(data):
    """Check an `oci-layout` file."""
    layout = _load_document(data, "oci-layout")
    if layout.get("imageLayoutVersion") != "1.0.0":
        raise OCILayoutError("Unsupported OCI layout version")


def parse_index(data):
    """Return the image manifest descriptors of an upload's index.json.

    The builder lists every image's manifest directly, so nested indexes
    are refused, as are entries of other media types.  An entry listed
    more than once (an image with several names) is returned once.
    """
    index = _load_document(data, "index.json")
    entries = index.get("manifests")
    if not isinstance(entries, list) or not entries:
        raise OCILayoutError("index.json lists no images")
    descriptors = []
    seen = set()
    for entry in entries:
        descriptor = OCIDescriptor.fromJSON(entry, "An index.json entry")
        if descriptor.media_type not in MANIFEST_MEDIA_TYPES:
            raise OCILayoutError(
                "index.json lists %s, not an image manifest"
                % descriptor.media_type
            )
        if descriptor.digest not in seen:
            seen.add(descriptor.digest)
            descriptors.append(descriptor)
    return descriptors


class OCIImageManifest:
    """An image manifest of an upload, checked against its descriptor."""

    def __init__(self, descriptor, data, config, layers):
        self.descriptor = descriptor
        self.data = data
        self.config = config
        self.layers = layers

    @property
    def layer_sources(self):
        """The repositories that layers were pulled from, by digest."""
        value = self.descriptor.annotations.get(SOURCES_ANNOTATION)
        try:
            sources = json.loads(value) if value is not None else {}
        except ValueError:
            sources = {}
        if not isinstance(sources, dict):
            return {}
        return {
            digest: source
            for digest, source in sources.items()
            if isinstance(source, str)
        }


def parse_manifest(data, descriptor):
    """Check an image manifest against its descriptor and parse it."""
    check_blob(data, descriptor)
    what = descriptor.file_name
    manifest = _load_document(data, what)
    if manifest.get("schemaVersion") != 2:
        raise OCILayoutError("%s is not a schema 2 manifest" % what)
    media_type = manifest.get("mediaType", descriptor.media_type)
    if media_type != descriptor.media_type:
        raise OCILayoutError(
            "%s is a %s, not a %s" % (what, media_type, descriptor.media_type)
        )
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise OCILayoutError("%s lists no layers" % what)
    return OCIImageManifest(
        descriptor,
        data,
        OCIDescriptor.fromJSON(manifest.get("config"), "%s's config" % what),
        [
            OCIDescriptor.fromJSON(layer, "A layer of %s" % what)
            for layer in layers
        ],
    )


def _read_file(path, limit, what):
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise OCILayoutError("The upload has no %s" % what)
    if len(data) > limit:
        raise OCILayoutError("%s is too large" % what)
    return data


def check_file(path, descriptor):
    """Check that the file at `path` is the blob `descriptor` describes."""
    sha256 = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1024 * 1024), b""):
                sha256.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        raise OCILayoutError("The upload has no %s" % descriptor.file_name)
    if size != descriptor.size or sha256.hexdigest() != descriptor.hex:
        raise OCILayoutError(
            "%s does not match its descriptor" % descriptor.file_name
        )


def read_upload(path):
    """Read the OCI upload in the directory `path`.

    `oci-layout`, `index.json`, every image manifest and every config
    must be there and are checked; layers may be absent (when the
    librarian already has them) and are not read.

    :return: A list of `OCIImageManifest`s.
    """
    parse_oci_layout(
        _read_file(os.path.join(path, "oci-layout"), 1024, "oci-layout")
    )
    manifests = []
    index_path = os.path.join(path, "index.json")
    for descriptor in parse_index(
        _read_file(index_path, MAX_DOCUMENT_SIZE, "index.json")
    ):
        data = _read_file(
            os.path.join(path, descriptor.file_name),
            MAX_DOCUMENT_SIZE,
            descriptor.file_name,
        )
        manifest = parse_manifest(data, descriptor)
        check_file(
            os.path.join(path, manifest.config.file_name), manifest.config
        )
        manifests.append(manifest)
    return manifests
