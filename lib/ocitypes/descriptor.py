# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Media types and content descriptors as value types.

A `Descriptor` is built from untrusted JSON by `Descriptor.from_json`,
which checks every field it keeps; everything downstream can rely on
`digest` being a `Digest` and `size` a non-negative integer.
"""

__all__ = [
    "MAX_INDEX_DEPTH",
    "MAX_MEDIA_TYPE_LENGTH",
    "Descriptor",
    "MediaType",
    "Platform",
    "check_foreign_url",
    "check_media_type",
]

import base64
import binascii
import re
from dataclasses import dataclass, field

from ocitypes.digest import Digest
from ocitypes.errors import MalformedContent

# How deep image indexes may nest below index.json: the builder refuses
# deeper archives and Launchpad deeper uploads, so both sides agree.
MAX_INDEX_DEPTH = 8


class MediaType:
    """The media types we recognise (anything else is carried opaquely)."""

    OCI_INDEX = "application/vnd.oci.image.index.v1+json"
    OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
    OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
    OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
    OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
    OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
    OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
    OCI_LAYER_ND_GZIP = OCI_LAYER_ND + "+gzip"
    OCI_LAYER_ND_ZSTD = OCI_LAYER_ND + "+zstd"
    DOCKER_MANIFEST_LIST = (
        "application/vnd.docker.distribution.manifest.list.v2+json"
    )
    DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
    DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
    DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
    DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    DOCKER_FOREIGN_LAYER_GZIP = (
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    )

    INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
    MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
    FOREIGN_LAYERS = frozenset(
        {
            OCI_LAYER_ND,
            OCI_LAYER_ND_GZIP,
            OCI_LAYER_ND_ZSTD,
            DOCKER_FOREIGN_LAYER_GZIP,
        }
    )

    @classmethod
    def layer_for(cls, compression):
        """The OCI layer media type for a compression name."""
        return {
            None: cls.OCI_LAYER,
            "gzip": cls.OCI_LAYER_GZIP,
            "zstd": cls.OCI_LAYER_ZSTD,
        }[compression]


# RFC 6838 section 4.2: type "/" subtype, each a restricted-name of at
# most 127 characters; no parameters, spaces or controls.
MAX_MEDIA_TYPE_LENGTH = 255
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(_RESTRICTED_NAME + "/" + _RESTRICTED_NAME, re.ASCII)


def check_media_type(value, what="mediaType"):
    """``value`` if it is a media type by RFC 6838's grammar.

    A media type from an archive or upload ends up in HTTP headers (the
    registry push's Content-Type) and in what the web service shows:
    anything else, a CR or LF above all, is refused.

    :raises MalformedContent: naming ``what``, on one line.
    """
    if not isinstance(value, str):
        raise MalformedContent(f"{what} is not a string")
    if len(value) > MAX_MEDIA_TYPE_LENGTH or not _MEDIA_TYPE.fullmatch(value):
        raise MalformedContent(
            f"{what} {value[:80]!r} is not a media type (RFC 6838)"
        )
    return value


# Host names that never name a public server (RFC 6761, RFC 8375, and
# the names cloud metadata services answer to).
_PRIVATE_SUFFIXES = (
    "localhost",
    "local",
    "internal",
    "lan",
    "home.arpa",
    "localdomain",
)


def check_foreign_url(url, what="urls"):
    """``url`` if a non-distributable layer may be fetched from it.

    A foreign layer's ``urls`` are handed on to whoever pulls the image
    (the registry push sends the manifest as built): only ``https`` URLs
    of a public host are accepted.  Refused: other schemes, credentials
    in the URL, IP literals that are loopback, link-local (the cloud
    metadata address 169.254.169.254), private, reserved, multicast or
    unspecified, single-label host names and special-use ones
    (``localhost``, ``*.local``, ``*.internal``...).  Host names are not
    resolved here: what a public name resolves to is its owner's.

    :raises MalformedContent: naming ``what``, on one line.
    """
    import ipaddress
    from urllib.parse import urlsplit

    if not isinstance(url, str) or len(url) > 2048 or not url.isprintable():
        raise MalformedContent(f"{what} holds an unusable URL")
    shown = url[:120]
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port
    except ValueError:
        raise MalformedContent(f"{what}: {shown!r} is not a URL") from None
    if parts.scheme != "https" or not host:
        raise MalformedContent(f"{what}: {shown!r} is not an https URL")
    if parts.username is not None or parts.password is not None:
        raise MalformedContent(f"{what}: {shown!r} holds credentials")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if not address.is_global or address.is_multicast:
            raise MalformedContent(
                f"{what}: {shown!r} is not a public address"
            )
        return url
    name = host.rstrip(".").lower()
    if "." not in name:
        raise MalformedContent(f"{what}: {shown!r} is not a public host")
    # A top-level domain starts with a letter: "127.1" or "0x7f.1" are
    # addresses to some resolvers.
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name.rsplit(".", 1)[-1]) or any(
        name == suffix or name.endswith("." + suffix)
        for suffix in _PRIVATE_SUFFIXES
    ):
        raise MalformedContent(f"{what}: {shown!r} is not a public host")
    return url


def _check_str(value, what):
    if not isinstance(value, str) or len(value) > 1024:
        raise MalformedContent(f"{what} is not a reasonable string")
    return value


# Platform fields are printed and compared: GOOS/GOARCH-like words only.
_PLATFORM_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}|", re.ASCII)


def _check_platform_word(value, what):
    _check_str(value, what)
    if not _PLATFORM_WORD.fullmatch(value):
        raise MalformedContent(f"{what} {value[:80]!r} is not a valid name")
    return value


def _check_data(data, digest, size, what):
    """An embedded `data` field (OCI 1.1) must be the content described."""
    if not isinstance(data, str):
        raise MalformedContent(f"{what}.data is not a string")
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedContent(f"{what}.data is not valid base64")
    if len(content) != size:
        raise MalformedContent(
            f"{what}.data has {len(content)} bytes, the descriptor says "
            f"{size}"
        )
    hasher = digest.hasher()
    hasher.update(content)
    if hasher.hexdigest() != digest.hex:
        raise MalformedContent(f"{what}.data does not match {digest}")


@dataclass(frozen=True)
class Platform:
    """An image's platform: os/architecture[/variant]."""

    os: str
    architecture: str
    variant: str = None

    @classmethod
    def from_json(cls, value, what="platform"):
        if not isinstance(value, dict):
            raise MalformedContent(f"{what} is not an object")
        return cls(
            os=_check_platform_word(value.get("os", ""), f"{what}.os"),
            architecture=_check_platform_word(
                value.get("architecture", ""), f"{what}.architecture"
            ),
            variant=(
                _check_platform_word(value["variant"], f"{what}.variant")
                if value.get("variant")
                else None
            ),
        )

    def to_json(self):
        value = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            value["variant"] = self.variant
        return value

    @property
    def is_unknown(self):
        return self.os in ("", "unknown") or self.architecture in (
            "",
            "unknown",
        )

    def __str__(self):
        parts = [self.os, self.architecture]
        if self.variant:
            parts.append(self.variant)
        return "/".join(parts)


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor (media type, digest, size, ...)."""

    media_type: str
    digest: Digest
    size: int
    annotations: dict = field(default_factory=dict, compare=False)
    platform: Platform = None
    urls: tuple = ()

    @classmethod
    def from_json(cls, value, what="descriptor"):
        """Build from untrusted JSON; raise `MalformedContent` if invalid."""
        if not isinstance(value, dict):
            raise MalformedContent(f"{what} is not an object")
        media_type = value.get("mediaType", "")
        _check_str(media_type, f"{what}.mediaType")
        if media_type:
            check_media_type(media_type, f"{what}.mediaType")
        try:
            digest = Digest.parse(value.get("digest"))
        except ValueError as e:
            raise MalformedContent(f"{what}: {e}")
        size = value.get("size")
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
            or size >= 1 << 53
        ):
            raise MalformedContent(f"{what} has an invalid size {size!r}")
        annotations = value.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str)
            for k, v in annotations.items()
        ):
            raise MalformedContent(f"{what}.annotations is not a string map")
        platform = value.get("platform")
        if platform is not None:
            platform = Platform.from_json(platform, f"{what}.platform")
        urls = value.get("urls") or []
        if not isinstance(urls, list):
            raise MalformedContent(f"{what}.urls is not a list")
        urls = tuple(
            check_foreign_url(_check_str(u, f"{what}.urls"), f"{what}.urls")
            for u in urls
        )
        if "data" in value:
            _check_data(value["data"], digest, size, what)
        return cls(media_type, digest, size, annotations, platform, urls)

    def to_json(self):
        value = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.urls:
            value["urls"] = list(self.urls)
        if self.annotations:
            value["annotations"] = dict(sorted(self.annotations.items()))
        if self.platform is not None:
            value["platform"] = self.platform.to_json()
        return value

    @property
    def is_foreign(self):
        return self.media_type in MediaType.FOREIGN_LAYERS
