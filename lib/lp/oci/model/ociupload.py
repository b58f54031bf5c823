# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""What Launchpad reads of an OCI build's files beyond `ocilayout`.

The *OCI upload* (what a builder files when Launchpad asks for one:
``oci-layout``, ``index.json`` and ``blobs-sha256-<hex>``) is read with
`lp.oci.model.ocilayout`, the Launchpad patch series' module, by all
its readers: the build farm (`OCIRecipeBuildBehaviour`), upload
processing (`OCIRecipeUpload`), `IOCIRecipeBuild.getUploadProblems`,
the registry upload and the archive export.  This module holds the rest,
all harness only:

- the *legacy upload* (``manifest.json``, ``digests.json``, each
  ``<config>.json`` and ``<layer_id>.tar.gz``): `parse_legacy_upload`
  pairs manifest.json with digests.json, `check_legacy_config` checks a
  config against them, for the build farm, upload processing,
  `getUploadProblems`, the registry upload and the archive export;
  `legacy_image_manifest` makes the one image manifest a legacy image
  has, for the registry upload, the archive export and ``lp-oci
  fetch`` alike;
- bounded reading of JSON files and of documents stored in the
  librarian (`read_json_file`, `read_library_file_bytes`,
  `read_json_library_file`, `parse_json_document`): size and depth
  limited (`ocitypes.safejson`), and a stored document checked against
  the size and sha256 its row records;
- the bound on images: an upload may list at most `MAX_UPLOAD_IMAGES`
  (`check_image_count`), checked by the build farm and by upload
  processing before any manifest is read;

Everything here treats its input as hostile, and fails with a one-line
`OCIUploadError`.
"""

__all__ = [
    "LEGACY_LAYER_MEDIA_TYPE",
    "MAX_UPLOAD_IMAGES",
    "LegacyImage",
    "LegacyLayer",
    "LegacyManifest",
    "OCIUploadError",
    "check_file_name",
    "check_image_count",
    "check_legacy_config",
    "check_legacy_layer",
    "check_oci_manifest",
    "legacy_image_manifest",
    "parse_json_document",
    "parse_legacy_upload",
    "read_json_file",
    "read_json_library_file",
    "read_library_file_bytes",
]

import hashlib
import json
import os
import zlib
from dataclasses import dataclass

from lp.buildmaster.model.buildfarmjobbehaviour import is_safe_file_name
from lp.oci.interfaces.ociupload import OCIUploadError
from lp.services.osutils import open_regular
from ocitypes.descriptor import (
    Descriptor,
    MediaType,
    check_foreign_url,
    check_media_type,
)
from ocitypes.digest import Digest
from ocitypes.errors import MalformedContent
from ocitypes.safejson import MAX_JSON_SIZE, load_json

LEGACY_LAYER_MEDIA_TYPE = MediaType.DOCKER_LAYER_GZIP

# The images (distinct manifests) one upload may list.  A build files
# one image (two or three at most, in practice); upload processing
# stores and records every image's files in one transaction, so an
# upload listing more is refused before anything is read or fetched
# (see README "Upload processing at scale").
MAX_UPLOAD_IMAGES = 1000


def check_image_count(count, what):
    """Refuse an upload whose ``what`` lists ``count`` images, if too many.

    :raises OCIUploadError: beyond `MAX_UPLOAD_IMAGES`.
    """
    if count > MAX_UPLOAD_IMAGES:
        raise OCIUploadError(
            f"{what} lists {count} images; an upload may list at most "
            f"{MAX_UPLOAD_IMAGES}"
        )


def check_file_name(name):
    """Check that a name from the builder is a plain file name.

    :raises OCIUploadError: for anything that could escape a directory
        or hide in it (see `is_safe_file_name`).
    """
    if not is_safe_file_name(name):
        raise OCIUploadError(f"Unacceptable file name {name!r}")
    return name


def parse_json_document(data, what):
    """Parse a document's bytes, bounded in size and depth.

    :raises OCIUploadError: if they are too big, too deep or not JSON.
    """
    try:
        return load_json(data, what)
    except MalformedContent as e:
        raise OCIUploadError(str(e)) from None


def read_json_file(path, what=None):
    """Parse a small JSON file, bounded in size and depth.

    :raises OCIUploadError: if it is missing, too big, too deep or not
        JSON.
    """
    what = what or os.path.basename(path)
    try:
        # Never through a link, nor blocked by a FIFO.
        with open_regular(path) as f:
            data = f.read(MAX_JSON_SIZE + 1)
    except OSError as e:
        raise OCIUploadError(f"Cannot read {what}: {e.strerror}") from None
    return parse_json_document(data, what)


def check_oci_manifest(manifest):
    """Check what `ocilayout` passes on unchecked in an image manifest.

    Every media type (the manifest's, its config's and its layers') must
    follow RFC 6838's grammar (`check_media_type`): they become HTTP
    headers and what the web service shows.  A descriptor's ``urls``
    (a non-distributable layer's) are handed on to whoever pulls the
    image, so each must be an ``https`` URL of a public host
    (`check_foreign_url`).

    :param manifest: an `OCIImageManifest`.
    :raises OCIUploadError: naming the manifest, on one line.
    """
    what = manifest.descriptor.file_name
    try:
        check_media_type(
            manifest.descriptor.media_type, f"The index entry of {what}"
        )
        check_media_type(manifest.config.media_type, f"{what}'s config")
        for layer in manifest.layers:
            check_media_type(layer.media_type, f"A layer of {what}")
        document = parse_json_document(manifest.data, what)
        descriptors = [document.get("config")] + list(
            document.get("layers") or []
        )
        for descriptor in descriptors:
            urls = descriptor.get("urls")
            if urls is None:
                continue
            if not isinstance(urls, list):
                raise MalformedContent(f"A layer of {what} has invalid urls")
            for url in urls:
                check_foreign_url(url, f"A layer of {what}")
    except MalformedContent as e:
        raise OCIUploadError(str(e)) from None


# All of a legacy layer's decompressed bytes: at most this many times
# its size, plus `_INFLATE_SLACK` (as `lp-oci gather` bounds its input).
_INFLATE_RATIO = 200
_INFLATE_SLACK = 1 << 30


def _gunzip(f, limit, what):
    """Yield the decompressed bytes of a gzip file (members in turn)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    inflated = 0
    pending = b""
    while True:
        if not pending:
            pending = f.read(1 << 20)
            if not pending:
                break
        if inflater.eof:
            # Another member follows.
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        out = inflater.decompress(pending, 1 << 20)
        pending = (
            inflater.unused_data if inflater.eof else inflater.unconsumed_tail
        )
        inflated += len(out)
        if inflated > limit:
            raise OCIUploadError(f"{what} expands beyond {limit} bytes")
        yield out
    if not inflater.eof:
        raise OCIUploadError(f"{what} is not a complete gzip stream")


def check_legacy_layer(path, diff_id, what=None):
    """Check that a legacy layer's gzip file holds the diff_id's tar.

    For a layer that digests.json does not name by the file's own digest
    (one docker pulled: digests.json has the registry's digest of
    another compression of it), so that it is verified like any other
    content before it is stored.

    :raises OCIUploadError: if it is not gzip, is truncated, expands
        beyond the bound, or does not have ``diff_id``.
    """
    what = what or os.path.basename(path)
    hasher = hashlib.sha256()
    try:
        with open_regular(path) as f:
            limit = (
                os.fstat(f.fileno()).st_size * _INFLATE_RATIO + _INFLATE_SLACK
            )
            for chunk in _gunzip(f, limit, what):
                hasher.update(chunk)
    except zlib.error:
        raise OCIUploadError(f"{what} is not a gzip stream") from None
    except OSError as e:
        raise OCIUploadError(f"Cannot read {what}: {e.strerror}") from None
    if hasher.hexdigest() != diff_id.hex:
        raise OCIUploadError(
            f"{what} does not have its diff_id {diff_id} (its tar has "
            f"sha256:{hasher.hexdigest()})"
        )


def read_library_file_bytes(lfa, what=None):
    """The bytes of a small librarian file (a document), verified.

    Documents (index, manifests, configs) are read whole, so the file
    must be at most `MAX_JSON_SIZE` bytes, and on disk it must still be
    the content its row records: its size and its sha256.

    :raises OCIUploadError: if it is gone, too big, or damaged.
    """
    what = what or lfa.filename
    content = lfa.content
    if content is None:
        raise OCIUploadError(f"{what} has been deleted")
    if content.filesize > MAX_JSON_SIZE:
        raise OCIUploadError(f"{what} is too big to be JSON metadata")
    try:
        stream = lfa.open()
    except OSError as e:
        raise OCIUploadError(f"Cannot read {what}: {e.strerror}") from None
    size = content.filesize
    try:
        # One byte more than recorded, to see a file that grew; reading
        # MAX_JSON_SIZE + 1 would allocate that much for any document.
        data = stream.read(size + 1)
    finally:
        lfa.close()
    if len(data) != size:
        raise OCIUploadError(
            f"{what} is {len(data)}{'+' if len(data) > size else ''} bytes "
            f"in the librarian, {size} recorded"
        )
    if content.sha256 and hashlib.sha256(data).hexdigest() != content.sha256:
        raise OCIUploadError(
            f"{what} in the librarian does not have its recorded sha256 "
            f"{content.sha256}"
        )
    return data


def read_json_library_file(lfa, what=None):
    """Parse a small JSON file from the librarian, bounded in size and depth.

    :raises OCIUploadError: if it is gone, too big, damaged (see
        `read_library_file_bytes`), too deep or not JSON.
    """
    what = what or lfa.filename
    return parse_json_document(read_library_file_bytes(lfa, what), what)


@dataclass(frozen=True)
class LegacyLayer:
    """A layer of a legacy upload, as digests.json describes it."""

    diff_id: Digest
    digest: Digest
    layer_id: str
    # The repository ("<registry>/<name>") docker pulled it from, or "".
    source: str = ""

    @property
    def file_name(self):
        return f"{self.layer_id}.tar.gz"


@dataclass(frozen=True)
class LegacyImage:
    """An image of a legacy upload: its config file and layers."""

    config_name: str
    layers: tuple


def parse_legacy_upload(manifest, digests):
    """Pair a legacy upload's manifest.json with its digests.json.

    Digests are normalised: digests.json holds bare hex for layers built
    on the builder and ``sha256:<hex>`` for pulled ones.

    :return: A list of `LegacyImage`, one per manifest.json entry, its
        layers in manifest.json's order (bottom first).
    :raises OCIUploadError: if the two do not describe a valid upload.
    """
    if not isinstance(manifest, list) or not manifest:
        raise OCIUploadError("manifest.json is not a non-empty list")
    check_image_count(len(manifest), "manifest.json")
    if not isinstance(digests, list) or len(digests) != len(manifest):
        raise OCIUploadError(
            "digests.json does not have one entry per manifest.json entry"
        )
    images = []
    for entry, layer_digests in zip(manifest, digests):
        if not isinstance(entry, dict) or not isinstance(layer_digests, dict):
            raise OCIUploadError("manifest.json or digests.json is malformed")
        config_name = entry.get("Config")
        if not isinstance(config_name, str):
            raise OCIUploadError("A manifest.json entry has no Config")
        try:
            check_file_name(config_name)
        except OCIUploadError:
            raise OCIUploadError(
                f"Config {config_name!r} is not a file name of a legacy "
                "upload"
            ) from None
        layer_paths = entry.get("Layers")
        if not isinstance(layer_paths, list) or len(layer_paths) < len(
            layer_digests
        ):
            raise OCIUploadError(
                f"digests.json does not describe every layer of {config_name}"
            )
        by_layer_id = {}
        for diff_id, details in layer_digests.items():
            try:
                diff_id = Digest.from_legacy(diff_id)
                digest = Digest.from_legacy(details["digest"])
                layer_id = check_file_name(details["layer_id"])
            except (TypeError, KeyError, ValueError, OCIUploadError):
                raise OCIUploadError(
                    f"digests.json entry for layer {diff_id!s:.80} is "
                    "malformed"
                ) from None
            source = details.get("source")
            by_layer_id[layer_id] = LegacyLayer(
                diff_id,
                digest,
                layer_id,
                source if isinstance(source, str) else "",
            )
        # manifest.json's Layers give the order, bottom first: builders
        # without the patch series name them ``<layer_id>/layer.tar``,
        # those with it ``<layer_id>.tar.gz`` (the file filed), a layer
        # repeated in the image by its first occurrence.  digests.json is
        # keyed by diff_id, so describes a repeated layer once.
        layers = []
        for path in layer_paths:
            layer_id = ""
            if isinstance(path, str):
                if path.endswith(".tar.gz") and "/" not in path:
                    layer_id = path[: -len(".tar.gz")]
                else:
                    layer_id = path.split("/", 1)[0]
            layer = by_layer_id.get(layer_id)
            if layer is None:
                raise OCIUploadError(
                    f"manifest.json layer {path!s:.80} of {config_name} is "
                    "not in digests.json"
                )
            layers.append(layer)
        if len(set(map(id, layers))) != len(by_layer_id):
            raise OCIUploadError(
                f"manifest.json does not list every layer of {config_name} "
                "that digests.json describes"
            )
        images.append(LegacyImage(config_name, tuple(layers)))
    return images


def check_legacy_config(config, image):
    """Check a legacy upload's parsed config against digests.json.

    The config must list ``rootfs.diff_ids``, each of them a layer that
    digests.json describes for the image (the export and the push
    build the image's manifest from them).

    :param image: The `LegacyImage` of the config.
    :raises OCIUploadError: if it does not.
    """
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        raise OCIUploadError(
            f"Config {image.config_name} has no rootfs.diff_ids"
        )
    described = {layer.diff_id for layer in image.layers}
    for diff_id in diff_ids:
        try:
            known = Digest.parse(diff_id) in described
        except ValueError:
            known = False
        if not known:
            raise OCIUploadError(
                f"digests.json has no layer for diff_id {diff_id!s:.80} "
                f"of {image.config_name}"
            )


@dataclass(frozen=True)
class LegacyManifest:
    """The image manifest of a legacy image, and what it describes.

    ``layers`` pairs each layer's `Descriptor` with its `LegacyLayer`,
    in the order of the config's ``rootfs.diff_ids``.
    """

    content: bytes
    config: Descriptor
    layers: tuple

    @property
    def descriptor(self):
        return Descriptor(
            MediaType.DOCKER_MANIFEST,
            Digest.of_bytes(self.content),
            len(self.content),
        )


def legacy_image_manifest(config_data, config, image, stored_layer):
    """The image manifest a registry push of a legacy image sends.

    A legacy upload has no manifest: the push makes one, in the patched
    upstream shape (``OCIRegistryClient._build_registry_manifest``,
    serialised by ``_uploadRegistryManifest`` with ``json.dumps``): a
    Docker schema 2 manifest of the config as stored and, in the order
    of the config's ``rootfs.diff_ids``, each layer file under the
    sha256 of the stored file, never the registry digest digests.json
    may give for a pulled layer.  The registry upload, the archive
    export and ``lp-oci fetch`` all use this one, so an archive of a
    build has the manifest digest its push gets.

    :param config_data: The config's bytes, as stored.
    :param config: The config, parsed.
    :param image: The `LegacyImage`.
    :param stored_layer: A callable taking a `LegacyLayer` and returning
        the (sha256 hex, size) of the file stored for it.
    :return: A `LegacyManifest`.
    :raises OCIUploadError: if the config and digests.json disagree.
    """
    check_legacy_config(config, image)
    by_diff_id = {layer.diff_id: layer for layer in image.layers}
    config_descriptor = Descriptor(
        MediaType.DOCKER_CONFIG, Digest.of_bytes(config_data), len(config_data)
    )
    layers = []
    for diff_id in config["rootfs"]["diff_ids"]:
        layer = by_diff_id[Digest.parse(diff_id)]
        sha256, size = stored_layer(layer)
        layers.append(
            (
                Descriptor(
                    LEGACY_LAYER_MEDIA_TYPE, Digest("sha256", sha256), size
                ),
                layer,
            )
        )
    document = {
        "schemaVersion": 2,
        "mediaType": MediaType.DOCKER_MANIFEST,
        "config": {
            "mediaType": config_descriptor.media_type,
            "size": config_descriptor.size,
            "digest": str(config_descriptor.digest),
        },
        "layers": [
            {
                "mediaType": descriptor.media_type,
                "size": descriptor.size,
                "digest": str(descriptor.digest),
            }
            for descriptor, _ in layers
        ],
    }
    return LegacyManifest(
        json.dumps(document).encode("UTF-8"), config_descriptor, tuple(layers)
    )
