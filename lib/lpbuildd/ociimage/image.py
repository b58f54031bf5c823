# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The images found in an archive, as immutable value objects.

These are what the resolver hands to the layout writer: each image has
a verified config and verified layers, each layer knows both the blob
we output (compressed) and its diff_id.  They check their own
consistency when made, so nothing downstream checks it again.
"""

__all__ = [
    "CheckedDocument",
    "ForeignLayer",
    "IMAGE_NAME",
    "Image",
    "LAYER_SOURCE",
    "LAYER_SOURCES",
    "Layer",
    "REF_NAME",
    "SourceManifest",
    "document_bytes",
]

import dataclasses
from dataclasses import dataclass, field

from lpbuildd.ociimage.blobstore import LayerBlob
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


@dataclass(frozen=True)
class Layer:
    """One verified layer of an image, with the blob that holds it."""

    diff_id: Digest
    descriptor: Descriptor  # what the output manifest says
    blob: LayerBlob

    is_foreign = False

    def __post_init__(self):
        if self.blob.diff_id != self.diff_id:
            raise ValueError(f"{self.blob.name!r} is not layer {self.diff_id}")
        if (self.descriptor.digest, self.descriptor.size) != (
            self.blob.out_digest,
            self.blob.out_size,
        ):
            raise ValueError(
                f"descriptor of {self.descriptor.digest} does not describe "
                f"the blob {self.blob.out_digest} we output"
            )

    @property
    def recompressed(self):
        """Did we compress this layer ourselves?"""
        return self.blob.recompressed


@dataclass(frozen=True)
class ForeignLayer:
    """A non-distributable layer: its descriptor only, no blob."""

    diff_id: Digest
    descriptor: Descriptor

    is_foreign = True
    blob = None
    recompressed = False

    def __post_init__(self):
        if not self.descriptor.is_foreign:
            raise ValueError(f"layer {self.diff_id} is not foreign")


@dataclass(frozen=True)
class SourceManifest:
    """An image's source manifest, kept byte-exact (and so its digest).

    `layer_sources` maps its layers' digests to the repository each was
    pulled from, where known; they go on the index entry (see
    `LAYER_SOURCES`), since the manifest's own layers cannot be
    annotated.
    """

    data: object  # bytes, or a `CheckedDocument`: see `document_bytes`
    media_type: str
    layer_sources: dict = field(default_factory=dict)


class CheckedDocument:
    """A document (config, manifest) whose digest is already known.

    It holds the bytes, or only the `DocumentBlob` they are in and reads
    them when asked, so that the images of an archive do not hold every
    config and kept manifest in memory at once, and an image built from
    one does not hash it again (many manifests may share a config of
    megabytes).
    """

    __slots__ = ("digest", "size", "_data", "_blob")

    def __init__(self, digest, size, data=None, blob=None):
        if (data is None) == (blob is None):
            raise ValueError("give either data or a blob")
        self.digest = digest
        self.size = size
        self._data = data
        self._blob = blob

    @classmethod
    def of(cls, data):
        """Bytes, hashed now."""
        return cls(Digest.of_bytes(data), len(data), data=bytes(data))

    @classmethod
    def in_blob(cls, blob):
        """A verified `DocumentBlob`'s content, read on demand."""
        return cls(blob.digest, blob.size, blob=blob)

    def read_bytes(self):
        if self._data is not None:
            return self._data
        return self._blob.read_all()


def document_bytes(value):
    """The bytes of a document given as bytes or a `CheckedDocument`."""
    if isinstance(value, CheckedDocument):
        return value.read_bytes()
    return value


@dataclass(frozen=True)
class Image:
    """One verified image."""

    config: object  # bytes, or a `CheckedDocument`: see `config_bytes`
    config_digest: Digest
    platform: Platform
    layers: tuple  # of `Layer` and `ForeignLayer`, in the config's order
    names: tuple = ()  # of (repository or None, tag or None)
    source_manifest: SourceManifest = None

    def __post_init__(self):
        if isinstance(self.config, CheckedDocument):
            known = self.config.digest
        else:
            known = Digest.of_bytes(self.config)
        if known != self.config_digest:
            raise ValueError(f"config is not {self.config_digest}")
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "names", tuple(self.names))

    @property
    def key(self):
        return (
            self.config_digest,
            tuple(layer.diff_id for layer in self.layers),
        )

    def config_bytes(self):
        return document_bytes(self.config)

    def config_descriptor(self):
        if isinstance(self.config, CheckedDocument):
            size = self.config.size
        else:
            size = len(self.config)
        return Descriptor(MediaType.OCI_CONFIG, self.config_digest, size)

    def with_names(self, names):
        """This image, also known by `names` (duplicates are ignored)."""
        merged = list(self.names)
        merged.extend(n for n in names if n not in merged)
        if len(merged) == len(self.names):
            return self
        return dataclasses.replace(self, names=merged)
