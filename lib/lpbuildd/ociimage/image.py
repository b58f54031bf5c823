# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The images found in an archive, as value objects.

These are what the resolver hands to the layout writer: each image has
a verified config and verified layers, each layer knows both the blob
we output (compressed) and its diff_id.
"""

__all__ = [
    "IMAGE_NAME",
    "Image",
    "LAYER_SOURCE",
    "LAYER_SOURCES",
    "Layer",
    "REF_NAME",
    "normalise_repository",
    "split_reference",
]

from dataclasses import dataclass, field

from ocitypes.descriptor import Descriptor, MediaType, Platform
from ocitypes.digest import Digest

# Annotations we write on index descriptors (as Docker 25+ does) and on
# layers whose source repository the builder knows.
REF_NAME = "org.opencontainers.image.ref.name"
IMAGE_NAME = "io.containerd.image.name"
LAYER_SOURCE = "com.canonical.launchpad.oci.source-repository"
# On an index entry whose manifest is kept byte-exact (so its layers
# cannot be annotated): a JSON object {layer digest: repository}.
LAYER_SOURCES = "com.canonical.launchpad.oci.layer-source-repositories"


@dataclass
class Layer:
    """One verified layer of an image."""

    diff_id: Digest
    descriptor: Descriptor  # what the output manifest says
    blob: object = None  # the `Blob` holding it; None for foreign layers
    recompressed: bool = False  # True if we compressed it ourselves

    @property
    def is_foreign(self):
        return self.blob is None


@dataclass
class Image:
    """One verified image."""

    config: bytes
    config_digest: Digest
    platform: Platform
    layers: list
    names: list = field(default_factory=list)
    # The source manifest, when it can be kept byte-exact.
    manifest: bytes = None
    manifest_media_type: str = None
    # {layer Digest: repository} for a kept manifest's layers.
    layer_sources: dict = field(default_factory=dict)

    @property
    def key(self):
        return (self.config_digest, tuple(l.diff_id for l in self.layers))

    def config_descriptor(self):
        return Descriptor(
            MediaType.OCI_CONFIG, self.config_digest, len(self.config)
        )


def split_reference(reference):
    """Split an image reference into (repository, tag or None).

    >>> split_reference("localhost:5000/app:1.0")
    ('localhost:5000/app', '1.0')
    """
    name = reference.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, None


def normalise_repository(repository):
    """Spell a repository in full, as Docker does (docker.io/library/x).

    >>> normalise_repository("busybox")
    'docker.io/library/busybox'
    """
    first, _, rest = repository.partition("/")
    if not rest:
        return f"docker.io/library/{repository}"
    if "." in first or ":" in first or first == "localhost":
        return repository
    return f"docker.io/{repository}"
