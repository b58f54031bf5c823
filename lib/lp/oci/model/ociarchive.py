# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A build's images as an OCI archive or a ``docker load``-able archive.

Both archives are tars generated on demand from the build's librarian
files, never written anywhere first:

OCI archive (`OCIArchiveFormat.OCI`)::

    oci-layout                  {"imageLayoutVersion":"1.0.0"}
    index.json                  one entry per image and name
    blobs/  blobs/sha256/
    blobs/sha256/<hex>          per image: manifest, config, layers

Docker archive (`OCIArchiveFormat.DOCKER`), as Docker 25+ ``docker save``
writes it: the same members plus ``manifest.json`` after ``index.json``,
a list of ``{"Config", "RepoTags", "Layers"}`` whose paths point into
``blobs/sha256/``.  Docker 1.10 to 24 read manifest.json and decompress
each layer file (gzip always, zstd since Docker 23); Docker 25+ and
containerd read index.json.

``index.json`` (in both) has, for each image, one entry per name with
``io.containerd.image.name`` (the full reference) and
``org.opencontainers.image.ref.name`` (the tag; only this for a name
that is a bare tag, which manifest.json leaves out), or one entry
without annotations for an unnamed image; each entry carries the platform of
the image's config.  The names are those of the entries of the build's
own ``index.json`` that lead to the image (for a legacy build, the
``RepoTags`` of its manifest.json); ``RepoTags`` gives each name only to
the first image that has it, since Docker can tag only one image with
it.

``index.json`` is generated, not the build's copied: so both formats
and legacy builds share one shape, and Launchpad's own annotations
(``com.canonical.launchpad.oci.*``) stay out of the download.  An OCI
build's stored index and manifests are read with
`lp.oci.model.ocilayout`, as the upload processor read them; a legacy
build's files with `lp.oci.model.ociupload`.

Blobs (manifests, configs, layers) are the build's stored files,
byte-exact, each once, in the order the images first reference them:
so layers and configs keep their digests and the image keeps its ID.
Planning checks each against what the build recorded (digest, size,
presence in the librarian) without reading it; streaming reads each
exactly once and fails if a file is shorter than recorded.  Layers are
not decompressed here: upload processing checked an OCI upload's
blobs against their digests, and a legacy build's gzip layers are taken
as it stored them (their diff_ids are not recomputed).

Every member header is a ustar header (a pax size record only for a
member of 8 GiB or more) with mtime 0, uid and gid 0, no owner names,
mode 0644 (0755 for directories); the generated JSON is canonical
(sorted keys, compact).  So the archive is a function of the build's
files: the same build always gives the same bytes, and the size is
the sum of the members' headers, contents and padding plus the two
zero blocks that end a tar.

A legacy build (``manifest.json`` and ``digests.json``) gets the same
archives.  Its stored files are each image's config (``<hex>.json``)
and its layers as gzip files (``<layer_id>.tar.gz``, found by the digest
digests.json gives).  Each image's manifest is generated, not stored:
the one a registry push of the build sends
(`lp.oci.model.ociupload.legacy_image_manifest`, a Docker schema 2
manifest serialised as upstream's push serialises it), so the archive
and the registry agree on the image's digest.  Its layers are in the
order of the config's ``rootfs.diff_ids``, each the file digests.json
pairs with that diff_id, under the sha256 of the stored file, not the
digest digests.json recorded: for a layer docker pulled, that was the
registry's, and the file the builder made is not that blob.  So the
manifest depends only on the stored config and layers and is the same
at every download.
"""

__all__ = [
    "OCIArchive",
    "OCIArchiveImage",
    "OCIArchiveSet",
    "docker_manifest_document",
    "index_document",
    "make_archive",
]

import bisect
import json
import re
import tarfile
from dataclasses import dataclass

from zope.interface import implementer

from lp.app.errors import NotFoundError
from lp.buildmaster.enums import BuildStatus
from lp.oci.interfaces.ociarchive import (
    CannotExportOCIArchive,
    IOCIArchive,
    IOCIArchiveSet,
    OCIArchiveError,
    OCIArchiveFormat,
)
from lp.oci.interfaces.ociupload import OCIUploadError
from lp.oci.model.ocilayout import OCILayoutError, parse_index, parse_manifest
from lp.oci.model.ociupload import (
    legacy_image_manifest,
    parse_json_document,
    parse_legacy_upload,
    read_json_library_file,
    read_library_file_bytes,
)
from lp.services.librarian.storage import get_librarian_storage
from ocitypes.descriptor import Descriptor, MediaType, Platform
from ocitypes.digest import Digest
from ocitypes.errors import MalformedContent
from ocitypes.filenames import OCI_LAYOUT_VERSION
from ocitypes.safejson import canonical_json

# Librarian files are copied in chunks of this size.
CHUNK_SIZE = 1024 * 1024

BLOCK_SIZE = tarfile.BLOCKSIZE
# Two zero blocks end a tar.
END_OF_ARCHIVE = bytes(2 * BLOCK_SIZE)

REF_NAME = "org.opencontainers.image.ref.name"
IMAGE_NAME = "io.containerd.image.name"

DEFAULT_DOMAIN = "docker.io"
OFFICIAL_PREFIX = "library/"

# What a name must look like to be written into an archive: a reference
# ``[domain[:port]/]path:tag`` (a loose form of the distribution
# grammar; anything else in the stored index.json is left out).
_REFERENCE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
    re.ASCII,
)
MAX_REFERENCE_LENGTH = 255
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)

_CONTENT_TYPES = {
    OCIArchiveFormat.OCI: "application/x-tar",
    OCIArchiveFormat.DOCKER: "application/x-tar",
}
_EXTENSIONS = {
    OCIArchiveFormat.OCI: "oci.tar",
    OCIArchiveFormat.DOCKER: "docker.tar",
}


def _full_reference(name):
    """``docker.io/library/x:tag`` for ``x:tag``, as Docker normalises."""
    first, slash, rest = name.partition("/")
    if slash and (any(c in first for c in ".:") or first == "localhost"):
        return name
    if not slash:
        name = OFFICIAL_PREFIX + name
    return f"{DEFAULT_DOMAIN}/{name}"


def _familiar_reference(name):
    """``x:tag`` for ``docker.io/library/x:tag``, as ``docker images``."""
    for prefix in (
        f"{DEFAULT_DOMAIN}/{OFFICIAL_PREFIX}",
        f"{DEFAULT_DOMAIN}/",
    ):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _valid_reference(name):
    return (
        isinstance(name, str)
        and len(name) <= MAX_REFERENCE_LENGTH
        and _REFERENCE.fullmatch(name) is not None
    )


def _tag_of(reference):
    return reference.rpartition(":")[2]


@dataclass(frozen=True)
class _Blob:
    """A member of the archive: stored (``library_file``) or generated."""

    descriptor: Descriptor
    library_file: object = None
    data: bytes = None


@dataclass(frozen=True)
class OCIArchiveImage:
    """An image of an archive.

    ``names`` are full references (``docker.io/library/x:tag``), or bare
    tags (``latest``) where the build's index.json gave no repository.
    """

    manifest: Descriptor
    config: Descriptor
    layers: tuple
    platform: Platform
    names: tuple


def _descriptor(value):
    """The ocitypes `Descriptor` of an ocilayout `OCIDescriptor`."""
    try:
        return Descriptor.from_json(value.toJSON())
    except MalformedContent as e:
        raise OCIArchiveError(str(e)) from None


def _platform(text):
    """The `Platform` of ``os/architecture[/variant]``, or None."""
    parts = text.split("/")
    if len(parts) < 2:
        return None
    platform = Platform(parts[0], parts[1], parts[2] if parts[2:] else None)
    return None if platform.is_unknown else platform


def _platform_of_config(config):
    values = [config.get(k) for k in ("os", "architecture", "variant")]
    words = [v for v in values if isinstance(v, str) and v]
    return _platform("/".join(words)) if len(words) >= 2 else None


class _Planner:
    """Finds a build's blobs and checks them against what it recorded."""

    def __init__(self, build, storage=None):
        self.build = build
        self.blobs = {}
        self.storage = storage or get_librarian_storage()

    def _check(self, digest, size, lfa, content, what):
        if content is None:
            raise OCIArchiveError(f"{what} {digest} has been deleted")
        if digest.algorithm != "sha256" or content.sha256 != digest.hex:
            raise OCIArchiveError(
                f"{what} {digest} has content with sha256 {content.sha256}"
            )
        if size is not None and content.filesize != size:
            raise OCIArchiveError(
                f"{what} {digest} is {content.filesize} bytes, its "
                f"descriptor says {size}"
            )
        if not self.storage.exists(content.sha256):
            raise OCIArchiveError(f"{what} {digest} is not in the librarian")
        return lfa

    def stored(self, descriptor, what):
        """The build's file holding ``descriptor``'s blob, checked."""
        try:
            _, lfa, content = self.build.getLayerFileByDigest(
                descriptor.digest
            )
        except NotFoundError:
            raise OCIArchiveError(
                f"{what} {descriptor.digest} is missing"
            ) from None
        return self._check(
            descriptor.digest, descriptor.size, lfa, content, what
        )

    def add(self, descriptor, library_file=None, data=None):
        if descriptor.digest not in self.blobs:
            self.blobs[descriptor.digest] = _Blob(
                descriptor, library_file, data
            )

    # The OCI upload.

    def _names(self, index):
        """{manifest digest text: [full reference]} from the build's index."""
        names = {}
        for entry in index.get("manifests") or ():
            try:
                descriptor = Descriptor.from_json(entry)
            except MalformedContent:
                # parse_index has refused anything that matters.
                continue
            reference = descriptor.annotations.get(IMAGE_NAME)
            ref_name = descriptor.annotations.get(REF_NAME)
            if _valid_reference(reference):
                reference = _full_reference(reference)
            elif _valid_reference(ref_name):
                reference = _full_reference(ref_name)
            elif isinstance(ref_name, str) and _TAG.fullmatch(ref_name):
                # A bare tag, as OCI archives have: no repository.
                reference = ref_name
            else:
                continue
            digest = str(descriptor.digest)
            if reference not in names.setdefault(digest, []):
                names[digest].append(reference)
        return names

    def plan_oci_upload(self, index_data):
        """The images of the build's stored index, read with ocilayout.

        :param index_data: The bytes of the build's index.json.
        """
        names = self._names(json.loads(index_data))
        images = []
        for entry in parse_index(index_data):
            manifest_descriptor = _descriptor(entry)
            lfa = self.stored(manifest_descriptor, "Manifest")
            manifest = parse_manifest(
                read_library_file_bytes(lfa, entry.digest), entry
            )
            config_descriptor = _descriptor(manifest.config)
            config_lfa = self.stored(config_descriptor, "Config")
            config = read_json_library_file(config_lfa, manifest.config.digest)
            self.add(manifest_descriptor, lfa)
            self.add(config_descriptor, config_lfa)
            layers = tuple(_descriptor(layer) for layer in manifest.layers)
            for layer in layers:
                self.add(layer, self.stored(layer, "Layer"))
            platform = _platform_of_config(config)
            if platform is None and manifest_descriptor.platform is not None:
                platform = _platform(str(manifest_descriptor.platform))
            images.append(
                OCIArchiveImage(
                    manifest_descriptor,
                    config_descriptor,
                    layers,
                    platform,
                    tuple(names.get(entry.digest, ())),
                )
            )
        return images

    # The legacy upload.

    def plan_legacy_upload(self, manifest, digests):
        legacy_images = parse_legacy_upload(manifest, digests)
        images = []
        for entry, legacy in zip(manifest, legacy_images):
            images.append(self._legacy_image(entry, legacy))
        return images

    def _legacy_image(self, entry, legacy):
        try:
            lfa = self.build.getFileByName(legacy.config_name)
        except NotFoundError:
            raise OCIArchiveError(
                f"Config {legacy.config_name} is missing"
            ) from None
        content = lfa.content
        if content is None:
            raise OCIArchiveError(
                f"Config {legacy.config_name} has been deleted"
            )
        self._check(
            Digest("sha256", content.sha256),
            None,
            lfa,
            content,
            f"Config {legacy.config_name}",
        )
        config_data = read_library_file_bytes(lfa, legacy.config_name)
        config = parse_json_document(config_data, legacy.config_name)
        layer_files = {}

        def stored_layer(layer):
            try:
                _, layer_lfa, layer_content = self.build.getLayerFileByDigest(
                    layer.digest
                )
            except NotFoundError:
                raise OCIArchiveError(
                    f"Layer {layer.digest} ({layer.diff_id}) is missing"
                ) from None
            self._check(
                Digest("sha256", layer_content.sha256),
                None,
                layer_lfa,
                layer_content,
                "Layer",
            )
            layer_files[layer.digest] = layer_lfa
            return layer_content.sha256, layer_content.filesize

        made = legacy_image_manifest(config_data, config, legacy, stored_layer)
        manifest_descriptor = made.descriptor
        self.add(manifest_descriptor, data=made.content)
        self.add(made.config, lfa)
        for descriptor, layer in made.layers:
            self.add(descriptor, layer_files[layer.digest])
        names = []
        for tag in entry.get("RepoTags") or ():
            if _valid_reference(tag):
                reference = _full_reference(tag)
                if reference not in names:
                    names.append(reference)
        return OCIArchiveImage(
            manifest_descriptor,
            made.config,
            tuple(descriptor for descriptor, _ in made.layers),
            _platform_of_config(config),
            tuple(names),
        )


def _tar_header(name, size=0, directory=False):
    """A member's header: ustar, fixed owner, mode and mtime."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    # A pax header is added only for what ustar cannot hold (a size of
    # 8 GiB or more).
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def _padding(size):
    return bytes(-size % BLOCK_SIZE)


def _blob_path(digest):
    return f"blobs/{digest.algorithm}/{digest.hex}"


def index_document(images):
    """The ``index.json`` of an archive of ``images``."""
    entries = []
    for image in images:
        base = image.manifest
        for reference in image.names or (None,):
            annotations = {}
            if reference is not None and ":" in reference:
                annotations = {
                    IMAGE_NAME: reference,
                    REF_NAME: _tag_of(reference),
                }
            elif reference is not None:
                annotations = {REF_NAME: reference}
            entries.append(
                Descriptor(
                    base.media_type,
                    base.digest,
                    base.size,
                    annotations,
                    image.platform,
                ).to_json()
            )
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MediaType.OCI_INDEX,
            "manifests": entries,
        }
    )


def docker_manifest_document(images):
    """The ``manifest.json`` of a Docker archive of ``images``."""
    entries = []
    tagged = set()
    for image in images:
        tags = []
        for reference in image.names:
            if ":" not in reference:
                # A bare tag: Docker cannot tag an image without a
                # repository.
                continue
            familiar = _familiar_reference(reference)
            if familiar not in tagged:
                tagged.add(familiar)
                tags.append(familiar)
        entry = {
            "Config": _blob_path(image.config.digest),
            "RepoTags": tags or None,
            "Layers": [_blob_path(layer.digest) for layer in image.layers],
        }
        foreign = {
            # Docker keys LayerSources by diff_id; the manifest does not
            # know it, so the key is the blob's digest as Docker 25 does
            # for layers whose diff_id is their digest.
            str(layer.digest): layer.to_json()
            for layer in image.layers
            if layer.is_foreign or layer.urls
        }
        if foreign:
            entry["LayerSources"] = foreign
        entries.append(entry)
    return canonical_json(entries)


@implementer(IOCIArchive)
class OCIArchive:
    """See `IOCIArchive`."""

    def __init__(self, build, format, images, blobs):
        self.build = build
        self.format = format
        self.images = tuple(images)
        self.content_type = _CONTENT_TYPES[format]
        self.filename = f"{build.recipe.name}-{build.id}.{_EXTENSIONS[format]}"
        self._segments = []
        self._starts = []
        self.member_names = []
        self._size = 0
        self._pending = []
        self._layout(blobs)

    # Laying out the tar.

    def _addBytes(self, data):
        if data:
            self._pending.append(data)

    def _flush(self):
        data = b"".join(self._pending)
        self._pending = []
        if data:
            self._addSegment(len(data), data)

    def _addSegment(self, length, payload):
        self._starts.append(self._size)
        self._segments.append((self._size, length, payload))
        self._size += length

    def _addMember(self, name, size=0, data=None, library_file=None):
        directory = name.endswith("/")
        self.member_names.append(name)
        self._addBytes(_tar_header(name, size, directory))
        if data is not None:
            self._addBytes(data)
        elif library_file is not None and size:
            self._flush()
            self._addSegment(size, library_file)
        self._addBytes(_padding(size))

    def _layout(self, blobs):
        layout = canonical_json({"imageLayoutVersion": OCI_LAYOUT_VERSION})
        index = index_document(self.images)
        self._addMember("oci-layout", len(layout), data=layout)
        self._addMember("index.json", len(index), data=index)
        if self.format == OCIArchiveFormat.DOCKER:
            manifest = docker_manifest_document(self.images)
            self._addMember("manifest.json", len(manifest), data=manifest)
        self._addMember("blobs/")
        self._addMember("blobs/sha256/")
        for blob in blobs:
            self._addMember(
                _blob_path(blob.descriptor.digest),
                blob.descriptor.size,
                data=blob.data,
                library_file=blob.library_file,
            )
        self._addBytes(END_OF_ARCHIVE)
        self._flush()

    # Reading.

    @property
    def size(self):
        """See `IOCIArchive`."""
        return self._size

    def _readFile(self, library_file, start, stop):
        stream = library_file.open()
        try:
            if start:
                stream.seek(start)
            remaining = stop - start
            while remaining:
                data = stream.read(min(CHUNK_SIZE, remaining))
                if not data:
                    raise OCIArchiveError(
                        f"{library_file.filename} is shorter than recorded"
                    )
                remaining -= len(data)
                yield data
        finally:
            library_file.close()

    def iterBytes(self, start=0, stop=None):
        """See `IOCIArchive`."""
        if stop is None:
            stop = self._size
        if not 0 <= start <= stop <= self._size:
            raise ValueError(
                f"Range {start}-{stop} is not within 0-{self._size}"
            )
        return self._iterBytes(start, stop)

    def _iterBytes(self, start, stop):
        position = start
        i = bisect.bisect_right(self._starts, start) - 1
        while position < stop:
            segment_start, length, payload = self._segments[i]
            begin = position - segment_start
            end = min(length, stop - segment_start)
            if isinstance(payload, bytes):
                yield payload[begin:end]
            else:
                yield from self._readFile(payload, begin, end)
            position = segment_start + end
            i += 1


def make_archive(build, format, storage=None):
    """The `OCIArchive` of a build's files, in ``format``.

    :param build: What `OCIArchiveSet.getArchive` is given, or anything
        with the same files: ``id``, ``recipe.name``, ``index``,
        ``manifest_data``, ``digests_data``, ``getFileByName`` and
        ``getLayerFileByDigest``, whose files have ``filename``,
        ``content`` (``sha256``, ``filesize``), ``open`` and ``close``
        (``lp-oci fetch`` gives the files it downloaded).
    :param storage: Where the files' contents are (``exists(sha256)``);
        by default the librarian.
    :raises OCIArchiveError: if the files do not make an image.
    """
    planner = _Planner(build, storage)
    try:
        if build.index is not None:
            images = planner.plan_oci_upload(
                read_library_file_bytes(build.index, "index.json")
            )
        elif build.digests is not None:
            images = planner.plan_legacy_upload(
                build.manifest_data, build.digests_data
            )
        else:
            raise OCIArchiveError(
                f"Build {build.id} has neither index.json nor digests.json"
            )
    except (OCIUploadError, OCILayoutError) as e:
        raise OCIArchiveError(" ".join(str(e).split())) from None
    return OCIArchive(build, format, images, planner.blobs.values())


@implementer(IOCIArchiveSet)
class OCIArchiveSet:
    """See `IOCIArchiveSet`."""

    def getArchive(self, build, format):
        """See `IOCIArchiveSet`."""
        # A superseded build was built in full: a newer one was pushed
        # to its tags, but its own images are kept and exported.
        if build.status not in (
            BuildStatus.FULLYBUILT,
            BuildStatus.SUPERSEDED,
        ):
            raise CannotExportOCIArchive(
                f"Build {build.id} is {build.status.name}, not FULLYBUILT"
            )
        return make_archive(build, format)
