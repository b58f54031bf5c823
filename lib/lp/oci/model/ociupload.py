# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Reading the files an OCI build hands over, in either of its forms.

The *OCI upload* (what `lpbuildd.oci` files since Docker 25): an OCI
image layout with flat names, ``oci-layout``, ``index.json`` and
``blobs-<algorithm>-<hex>`` for ``blobs/<algorithm>/<hex>``.  The
*legacy upload* (older builders): ``manifest.json``, ``digests.json``,
each ``<config>.json`` and ``<layer_id>.tar.gz``.

This is the one Launchpad-side reader of an upload: the build farm
master (`OCIRecipeBuildBehaviour`, fetching from the builder), upload
processing (`OCIRecipeUpload`, reading the upload directory) and
`IOCIRecipeBuild.verifySuccessfulUpload` (reading the librarian) all
walk an OCI upload with `walk_oci_upload` and pair a legacy upload's
files with `parse_legacy_upload`; each only supplies how a blob is
read.  So they apply the same rules:

- every descriptor must have a ``mediaType``, a digest and a size
  (`Descriptor.from_json`); an index entry without a media type is
  refused, not guessed at;
- image indexes nest at most `MAX_INDEX_DEPTH` deep below index.json,
  as the builder allows;
- index entries that are neither image indexes nor image manifests
  (attestations, artifacts) are skipped;
- JSON documents are bounded by `ocitypes.safejson` (size and depth).

Everything here treats its input as hostile: JSON is size-limited and
parsed into value types, and blobs are checked against their digest and
size.
"""

__all__ = [
    "LEGACY_LAYER_MEDIA_TYPE",
    "MAX_INDEX_DEPTH",
    "LegacyImage",
    "LegacyLayer",
    "OCIUploadDocument",
    "OCIUploadError",
    "OCIUploadImage",
    "OCIUploadLayer",
    "OCI_LAYOUT_VERSION",
    "blob_file_name",
    "check_file_name",
    "check_legacy_config",
    "check_oci_layout",
    "deep_json_as_layout_error",
    "digest_from_blob_file_name",
    "parse_json_document",
    "parse_legacy_upload",
    "read_json_file",
    "read_json_library_file",
    "read_oci_upload_directory",
    "read_library_file_bytes",
    "verify_blob_file",
    "walk_oci_upload",
]

import hashlib
import os
from contextlib import contextmanager
from dataclasses import dataclass

from lp.buildmaster.model.buildfarmjobbehaviour import is_safe_file_name
from lp.oci.enums import OCIFileKind
from lp.oci.interfaces.ociupload import OCIUploadError
from lp.oci.model.ocilayout import OCILayoutError
from ocitypes.descriptor import MAX_INDEX_DEPTH, Descriptor, MediaType
from ocitypes.digest import Digest
from ocitypes.errors import MalformedContent
from ocitypes.filenames import (
    INDEX_FILE_NAME,
    LAYOUT_FILE_NAME,
    OCI_LAYOUT_VERSION,
    blob_file_name,
    digest_from_blob_file_name,
)
from ocitypes.safejson import MAX_JSON_SIZE, load_json

# Files are hashed in chunks of this size.
CHUNK_SIZE = 1024 * 1024

LEGACY_LAYER_MEDIA_TYPE = MediaType.DOCKER_LAYER_GZIP


@contextmanager
def deep_json_as_layout_error():
    """Turn a document nested too deeply for `json` into an OCILayoutError.

    `lp.oci.model.ocilayout` parses documents with `json.loads`, which
    raises `RecursionError` (not a `ValueError`) on deeply nested input
    of a few hundred KB, so that error escapes it.  Harness only, around
    its callers, until the module catches it.
    """
    try:
        yield
    except RecursionError:
        raise OCILayoutError("A document is nested too deeply") from None


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
        with open(path, "rb") as f:
            data = f.read(MAX_JSON_SIZE + 1)
    except OSError as e:
        raise OCIUploadError(f"Cannot read {what}: {e.strerror}") from None
    return parse_json_document(data, what)


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


def verify_blob_file(path, digest, size=None):
    """Check that the file at ``path`` has this digest (and size).

    :raises OCIUploadError: if it does not.
    """
    what = blob_file_name(digest)
    try:
        actual_size = os.stat(path).st_size
    except OSError as e:
        raise OCIUploadError(f"Cannot read {what}: {e.strerror}") from None
    if size is not None and actual_size != size:
        raise OCIUploadError(
            f"{what} is {actual_size} bytes, its descriptor says {size}"
        )
    hasher = digest.hasher()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_SIZE), b""):
            hasher.update(chunk)
    if hasher.hexdigest() != digest.hex:
        raise OCIUploadError(
            f"{what} has digest {digest.algorithm}:{hasher.hexdigest()}"
        )


@dataclass(frozen=True)
class OCIUploadDocument:
    """A JSON blob of an OCI upload: image index, manifest or config."""

    descriptor: Descriptor
    kind: OCIFileKind


@dataclass(frozen=True)
class OCIUploadLayer:
    """A layer of an image in an OCI upload."""

    descriptor: Descriptor
    diff_id: Digest

    @property
    def digest(self):
        return self.descriptor.digest

    @property
    def is_foreign(self):
        return self.descriptor.is_foreign or bool(self.descriptor.urls)


@dataclass(frozen=True)
class OCIUploadImage:
    """One image of an OCI upload."""

    manifest: Descriptor
    config: Descriptor
    platform: str
    layers: tuple


def _descriptor(value, what):
    try:
        return Descriptor.from_json(value, what)
    except MalformedContent as e:
        raise OCIUploadError(str(e)) from None


def _check_document_size(descriptor, what):
    if descriptor.size > MAX_JSON_SIZE:
        raise OCIUploadError(
            f"{what} {descriptor.digest} is too big to be JSON metadata"
        )


def _platform(config, descriptor):
    parts = []
    for key in ("os", "architecture", "variant"):
        value = config.get(key)
        if isinstance(value, str) and value:
            parts.append(value)
    if len(parts) < 2 and descriptor.platform is not None:
        return str(descriptor.platform)
    return "/".join(parts) or "unknown"


def _image(manifest_descriptor, manifest, load_json):
    what = f"Manifest {manifest_descriptor.digest}"
    if not isinstance(manifest, dict):
        raise OCIUploadError(f"{what} is not a JSON object")
    config_descriptor = _descriptor(manifest.get("config"), f"{what} config")
    _check_document_size(config_descriptor, "Config")
    config = load_json(config_descriptor)
    if not isinstance(config, dict):
        raise OCIUploadError(
            f"Config {config_descriptor.digest} is not an object"
        )
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise OCIUploadError(f"{what} has no list of layers")
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
        raise OCIUploadError(
            f"Config {config_descriptor.digest} does not list one diff_id "
            f"per layer of {manifest_descriptor.digest}"
        )
    upload_layers = []
    for position, (layer, diff_id) in enumerate(zip(layers, diff_ids)):
        descriptor = _descriptor(layer, f"{what} layer {position}")
        try:
            diff_id = Digest.parse(diff_id)
        except ValueError as e:
            raise OCIUploadError(
                f"Config {config_descriptor.digest}: {e}"
            ) from None
        upload_layers.append(OCIUploadLayer(descriptor, diff_id))
    return OCIUploadImage(
        manifest_descriptor,
        config_descriptor,
        _platform(config, manifest_descriptor),
        tuple(upload_layers),
    )


def walk_oci_upload(index, load_json):
    """Find the documents and images an OCI upload's index leads to.

    :param index: The parsed ``index.json``.
    :param load_json: Called with the `Descriptor` of each index,
        manifest and config blob, in that order of discovery; returns the
        blob's parsed JSON, having checked its digest and size.
    :return: ``(documents, images)``: lists of `OCIUploadDocument` (each
        digest once) and `OCIUploadImage`.
    :raises OCIUploadError: if the upload is malformed.
    """
    documents = []
    images = []
    seen = set()

    def walk(index, what, depth):
        entries = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(entries, list):
            raise OCIUploadError(f"{what} has no list of manifests")
        for position, entry in enumerate(entries):
            descriptor = _descriptor(entry, f"{what} entry {position}")
            media_type = descriptor.media_type
            if not media_type:
                raise OCIUploadError(
                    f"{what} entry {position} has no mediaType"
                )
            if media_type not in MediaType.INDEXES | MediaType.MANIFESTS:
                # Attestations and other artifacts are not image content.
                continue
            if descriptor.digest in seen:
                continue
            seen.add(descriptor.digest)
            _check_document_size(descriptor, "Manifest")
            document = load_json(descriptor)
            if media_type in MediaType.INDEXES:
                if depth >= MAX_INDEX_DEPTH:
                    raise OCIUploadError(
                        f"Image index {descriptor.digest} nests too deeply"
                    )
                documents.append(
                    OCIUploadDocument(descriptor, OCIFileKind.INDEX)
                )
                walk(document, f"Image index {descriptor.digest}", depth + 1)
            else:
                documents.append(
                    OCIUploadDocument(descriptor, OCIFileKind.MANIFEST)
                )
                image = _image(descriptor, document, load_json)
                if image.config.digest not in seen:
                    seen.add(image.config.digest)
                    documents.append(
                        OCIUploadDocument(image.config, OCIFileKind.CONFIG)
                    )
                images.append(image)

    walk(index, "index.json", 0)
    if not images:
        raise OCIUploadError("index.json leads to no image manifest")
    return documents, images


def read_oci_upload_directory(directory):
    """Read the OCI upload in `directory` as upload processing does.

    Checks ``oci-layout``, reads ``index.json`` and walks it, verifying
    each document blob against its descriptor before parsing it.

    :return: ``(documents, images)`` as `walk_oci_upload` returns them.
    :raises OCIUploadError: if the upload is not acceptable.
    """

    def path_of(name):
        return os.path.join(directory, name)

    check_oci_layout(read_json_file(path_of(LAYOUT_FILE_NAME)))
    index = read_json_file(path_of(INDEX_FILE_NAME))

    def load_document(descriptor):
        path = path_of(blob_file_name(descriptor.digest))
        verify_blob_file(path, descriptor.digest, descriptor.size)
        return read_json_file(path, str(descriptor.digest))

    return walk_oci_upload(index, load_document)


def check_oci_layout(value):
    """Check the parsed ``oci-layout`` file.

    :raises OCIUploadError: if it is not an image layout we read.
    """
    version = (
        value.get("imageLayoutVersion") if isinstance(value, dict) else None
    )
    if version != OCI_LAYOUT_VERSION:
        raise OCIUploadError(
            f"oci-layout has imageLayoutVersion {version!r}, "
            f"not {OCI_LAYOUT_VERSION!r}"
        )


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
