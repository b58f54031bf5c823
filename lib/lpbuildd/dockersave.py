# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Read the output of `docker save` as a stream and verify it.

Three layouts reach a builder, depending on the Docker version it runs:

 * Docker <= 24: `manifest.json`, `<id>/layer.tar` (uncompressed), the
   configs as `<image id>.json`; a layer that appears twice is a
   symlink to the first copy.
 * Docker >= 25 with the classic image store: an OCI image layout
   (`oci-layout`, `index.json`, `blobs/sha256/<hex>`) beside
   `manifest.json`, whose `Config` and `Layers` name blobs.  Layers are
   uncompressed.
 * Docker >= 25 with the containerd image store: the same, but the
   layers are the compressed blobs pulled from or built for a registry,
   and `index.json` may lead to a nested index covering platforms whose
   blobs were not saved, and to attestation manifests.

All of them have `manifest.json`, which lists every saved image; that is
what `read_docker_save` follows.  The archive is read once, in order:
its metadata comes last, so every large member is hashed (and
compressed, or inflated to check it) as it streams past, before it is
known to be a layer.  Memory stays flat whatever the layer sizes.

Everything is verified: members named by a digest against it, configs
against the image ID, and each layer against the config's
`rootfs.diff_ids`.  Layers that arrive uncompressed are compressed with
gzip deterministically (no timestamp, no file name, fixed chunking), so
that the same layer always gives the same bytes and so the same digest;
layers that arrive compressed are kept byte for byte, since their
digests are the ones registries know.

`write_legacy_upload` and `write_oci_upload` then lay the result out in
the two forms Launchpad can fetch.
"""

__all__ = [
    "DockerSaveError",
    "SOURCES_ANNOTATION",
    "oci_upload_file_name",
    "parse_containerd_sources",
    "read_docker_save",
    "write_legacy_upload",
    "write_oci_upload",
]

import hashlib
import itertools
import json
import os
import posixpath
import re
import tarfile
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor

# Layers are read, hashed and compressed in pieces of this size.
CHUNK_SIZE = 1 << 20
# Members up to this size are held until the whole archive has been read:
# they may be documents (`manifest.json`, configs, OCI manifests and
# indexes) or small layers.  Larger members are held in memory only up to
# SMALL_MEMBERS_IN_MEMORY bytes in all; the rest go to disk.
SMALL_MEMBER = 1 << 20
SMALL_MEMBERS_IN_MEMORY = 64 << 20
# Larger JSON documents than this are refused.
MAX_DOCUMENT = 16 << 20
MAX_INDEX_DEPTH = 8
MAX_LINKS = 40
# zlib at level 1 is the fastest deflate the standard library has; its
# output is a few percent larger than at the default level.
GZIP_LEVEL = 1
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DICTIONARY_SIZE = 32 * 1024

MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MEDIA_TYPE_DOCKER_LIST = (
    "application/vnd.docker.distribution.manifest.list.v2+json"
)
MEDIA_TYPE_DOCKER_MANIFEST = (
    "application/vnd.docker.distribution.manifest.v2+json"
)
INDEX_MEDIA_TYPES = (MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_LIST)
MANIFEST_MEDIA_TYPES = (MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST)
LAYER_MEDIA_TYPES = {
    "gzip": MEDIA_TYPE_OCI_LAYER_GZIP,
    "zstd": MEDIA_TYPE_OCI_LAYER_ZSTD,
}

# On an entry of the OCI upload's index.json: a JSON object mapping the
# digests of the image's layers to the repository each was pulled from
# (for example "docker.io/library/ubuntu"), where the builder knows it,
# so that a registry upload can mount them rather than upload them.
SOURCES_ANNOTATION = "com.canonical.launchpad.oci.layer-sources"
SOURCE_LABEL = "containerd.io/distribution.source."

DIGEST_NAME = re.compile(r"(?:^|/)(?:sha256[:/])?([0-9a-f]{64})(?:\.json)?$")
BLOB_NAME = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")
DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
LAYER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class DockerSaveError(Exception):
    """The output of `docker save` cannot be used; the message says why."""


def oci_upload_file_name(path):
    """The name under which a file of an OCI upload is filed.

    Blobs (`blobs/sha256/<hex>`) become `blobs-sha256-<hex>`, which
    Launchpad turns back into their digest; `index.json` and
    `oci-layout` keep their names.
    """
    return path.replace("/", "-")


def parse_containerd_sources(listing):
    """Map blob digests to the repositories containerd pulled them from.

    :param listing: the output of `ctr content ls`: tab-separated
        columns DIGEST, SIZE, AGE and LABELS, the labels joined by ",";
        the value of a `containerd.io/distribution.source.<registry>`
        label is itself a ","-joined list of repositories.
    """
    sources = {}
    for line in listing.splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) < 2 or not DIGEST.match(fields[0].strip()):
            continue
        labels = {}
        key = None
        for token in fields[-1].strip().split(","):
            if "=" in token:
                key, value = token.split("=", 1)
                labels[key] = [value]
            elif key is not None:
                labels[key].append(token)
        for key, repositories in sorted(labels.items()):
            if key.startswith(SOURCE_LABEL) and repositories[0]:
                registry = key.split(SOURCE_LABEL, 1)[1]
                sources[fields[0].strip()] = f"{registry}/{repositories[0]}"
                break
    return sources


def _digest_hex(value, what):
    if not isinstance(value, str) or not DIGEST.match(value):
        raise DockerSaveError(f"{what} is not a sha256 digest: {value!r}")
    return value.split(":", 1)[1]


class _Member:
    """A regular file of the archive, as read from the stream.

    `sha256` and `size` describe the member as stored.  Small members
    keep their bytes (`data`, or a file at `path`); large compressed or
    JSON ones are saved at `path`; large uncompressed ones are only kept
    compressed.  Layers also get `diff_id` (the hex sha256 of the
    uncompressed tar) and the form in which they are filed:
    `filed_path`, `filed_sha256`, `filed_size` and `filed_compression`
    ("gzip", or "zstd" for a zstd layer kept as it arrived).
    """

    def __init__(self, name, size):
        self.name = name
        self.size = size
        self.sha256 = None
        self.data = None
        self.path = None
        self.compression = None
        self.diff_id = None
        self.filed_path = None
        self.filed_sha256 = None
        self.filed_size = None
        self.filed_compression = None

    def read(self):
        if self.data is not None:
            return self.data
        if self.path is None:
            raise DockerSaveError(f"{self.name} is not a JSON document")
        with open(self.path, "rb") as f:
            return f.read()

    def chunks(self):
        if self.data is not None:
            for start in range(0, len(self.data), CHUNK_SIZE):
                end = start + CHUNK_SIZE
                yield self.data[start:end]
        else:
            with open(self.path, "rb") as f:
                yield from iter(lambda: f.read(CHUNK_SIZE), b"")


def _sniff_compression(head):
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    elif head.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


def _looks_like_json(head):
    return head.lstrip(b" \t\r\n")[:1] in (b"{", b"[")


def _deflate(piece, dictionary):
    compressor = zlib.compressobj(
        GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, 9, zdict=dictionary
    )
    return compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH)


class _GzipWriter:
    """Write a gzip file deterministically, deflating in parallel.

    The input is cut into pieces of CHUNK_SIZE bytes wherever the
    writes fall; each piece is deflated on its own, primed with the 32
    KiB before it and ended with a sync flush, as pigz does.  The output
    therefore depends on the input alone, not on the number of threads
    or on how the input was written.  The header has no timestamp and no
    file name.
    """

    def __init__(self, path, executor, in_flight):
        self.path = path
        self._file = open(path, "wb")
        self._executor = executor
        self._in_flight = in_flight
        self._pending = deque()
        self._buffer = bytearray()
        self._dictionary = b""
        self._crc = 0
        self._length = 0
        self._sha256 = hashlib.sha256()
        self.size = 0
        self._emit(GZIP_HEADER)

    def _emit(self, data):
        self._file.write(data)
        self._sha256.update(data)
        self.size += len(data)

    def _submit(self, piece):
        self._crc = zlib.crc32(piece, self._crc)
        self._length += len(piece)
        self._pending.append(
            self._executor.submit(_deflate, piece, self._dictionary)
        )
        self._dictionary = piece[-DICTIONARY_SIZE:]
        while len(self._pending) > self._in_flight:
            self._emit(self._pending.popleft().result())

    def write(self, data):
        if not self._buffer and len(data) == CHUNK_SIZE:
            self._submit(bytes(data))
            return
        self._buffer += data
        while len(self._buffer) >= CHUNK_SIZE:
            self._submit(bytes(self._buffer[:CHUNK_SIZE]))
            del self._buffer[:CHUNK_SIZE]

    def close(self):
        """Finish the file; return its sha256 hex digest."""
        try:
            if self._buffer:
                self._submit(bytes(self._buffer))
                self._buffer.clear()
            while self._pending:
                self._emit(self._pending.popleft().result())
            # An empty final block, then the trailer.
            self._emit(b"\x03\x00")
            self._emit(
                (self._crc & 0xFFFFFFFF).to_bytes(4, "little")
                + (self._length & 0xFFFFFFFF).to_bytes(4, "little")
            )
        finally:
            self._file.close()
        return self._sha256.hexdigest()

    def abort(self):
        for future in self._pending:
            future.cancel()
        self._file.close()


def _decompressed_chunks(member):
    """Decompress a saved gzip or zstd layer, in chunks."""
    with open(member.path, "rb") as f:
        if member.compression == "zstd":
            try:
                import zstandard
            except ImportError:
                raise DockerSaveError(
                    f"{member.name} is zstd-compressed, and "
                    f"python3-zstandard is not installed"
                )
            reader = zstandard.ZstdDecompressor().stream_reader(
                f, read_size=CHUNK_SIZE, read_across_frames=True
            )
            try:
                yield from iter(lambda: reader.read(CHUNK_SIZE), b"")
            except zstandard.ZstdError as e:
                raise DockerSaveError(f"{member.name}: {e}")
            return
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            for chunk in iter(lambda: f.read(CHUNK_SIZE), b""):
                while chunk:
                    if decompressor.eof:
                        # Another gzip member follows.
                        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    yield decompressor.decompress(chunk, CHUNK_SIZE)
                    chunk = (
                        decompressor.unconsumed_tail
                        or decompressor.unused_data
                    )
            while not decompressor.eof:
                data = decompressor.decompress(b"", CHUNK_SIZE)
                if not data:
                    raise DockerSaveError(
                        f"{member.name}: gzip stream is truncated"
                    )
                yield data
        except zlib.error as e:
            raise DockerSaveError(f"{member.name}: {e}")


class SavedLayer:
    """A layer of a saved image, verified against its diff_id."""

    def __init__(self, member, layer_id):
        self.member = member
        self.layer_id = layer_id

    @property
    def diff_id(self):
        return f"sha256:{self.member.diff_id}"


class SavedImage:
    """An image of the archive: its config and verified layers.

    `manifest` holds the bytes of the registry manifest found in the
    archive for this image when every layer is kept as it arrived (the
    containerd image store), with `manifest_media_type`; otherwise None,
    and `write_oci_upload` makes one.
    """

    def __init__(self, config_member, config, repo_tags, layers):
        self.config_member = config_member
        self.config = config
        self.repo_tags = repo_tags
        self.layers = layers
        self.manifest = None
        self.manifest_media_type = None
        self.platform = None

    @property
    def config_digest(self):
        return f"sha256:{self.config_member.sha256}"


class DockerSave:
    """What `read_docker_save` found; see `read_docker_save`."""

    def __init__(self, workdir, keep_compressed, jobs):
        self.workdir = workdir
        self.keep_compressed = keep_compressed
        self.members = {}
        self.links = {}
        self.images = []
        self._jobs = jobs
        # Threads that deflate pieces of layers, and threads that check
        # compressed layers.
        self._deflaters = ThreadPoolExecutor(max_workers=jobs)
        self._verifiers = ThreadPoolExecutor(max_workers=jobs)
        self._verifying = []
        self._in_memory = 0
        # Paths are made in the verifying threads too.
        self._serial = itertools.count(1)

    def _newPath(self, suffix):
        serial = next(self._serial)
        return os.path.join(self.workdir, f".member-{serial}{suffix}")

    def _readMember(self, name, size, fileobj):
        """Hash a member and keep what may be needed of it."""
        member = _Member(name, size)
        if size <= SMALL_MEMBER:
            data = _read_exactly(fileobj, size, name)
            member.sha256 = hashlib.sha256(data).hexdigest()
            if self._in_memory + size <= SMALL_MEMBERS_IN_MEMORY:
                member.data = data
                self._in_memory += size
            else:
                member.path = self._newPath("")
                with open(member.path, "wb") as f:
                    f.write(data)
        else:
            head = _read_exactly(fileobj, min(size, CHUNK_SIZE), name)

            def chunks():
                yield head
                read = len(head)
                while read < size:
                    chunk = _read_exactly(
                        fileobj, min(size - read, CHUNK_SIZE), name
                    )
                    read += len(chunk)
                    yield chunk

            if _looks_like_json(head):
                self._saveMember(member, chunks())
            else:
                self._processLayer(member, chunks())
        match = BLOB_NAME.match(name)
        if match is not None and match.group(1) != member.sha256:
            raise DockerSaveError(
                f"{name} does not match its digest (its content has "
                f"sha256:{member.sha256})"
            )
        return member

    def _saveMember(self, member, chunks):
        member.path = self._newPath("")
        sha256 = hashlib.sha256()
        with open(member.path, "wb") as f:
            for chunk in chunks:
                sha256.update(chunk)
                f.write(chunk)
        member.sha256 = sha256.hexdigest()

    def _gzipWriter(self):
        return _GzipWriter(
            self._newPath(".tar.gz"), self._deflaters, 2 * self._jobs
        )

    def _processLayer(self, member, chunks, wait=False):
        """Read a layer once and hash it.

        An uncompressed layer is gzipped as it streams past.  A
        compressed one is saved as it is, and then decompressed from the
        saved file in the background to check its diff_id (and gzipped,
        if it is a zstd layer that is not to be kept), so that the next
        members can be read meanwhile.
        """
        chunks = iter(chunks)
        head = next(chunks, b"")
        member.compression = _sniff_compression(head)
        if member.compression is not None:
            if member.path is None:
                self._saveMember(member, itertools.chain((head,), chunks))
            future = self._verifiers.submit(self._decompressLayer, member)
            if wait:
                future.result()
            else:
                self._verifying.append(future)
            return
        writer = self._gzipWriter()
        sha256 = hashlib.sha256()
        try:
            for piece in itertools.chain((head,), chunks):
                sha256.update(piece)
                writer.write(piece)
            self._fileAs(member, writer)
        except BaseException:
            writer.abort()
            raise
        member.sha256 = member.diff_id = sha256.hexdigest()

    def _decompressLayer(self, member):
        writer = None
        if member.compression == "zstd" and not self.keep_compressed:
            writer = self._gzipWriter()
        sha256 = hashlib.sha256()
        try:
            for data in _decompressed_chunks(member):
                sha256.update(data)
                if writer is not None:
                    writer.write(data)
            if writer is not None:
                self._fileAs(member, writer)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is None:
            member.filed_path = member.path
            member.filed_sha256 = member.sha256
            member.filed_size = member.size
            member.filed_compression = member.compression
        member.diff_id = sha256.hexdigest()

    def _fileAs(self, member, writer):
        member.filed_sha256 = writer.close()
        member.filed_path = writer.path
        member.filed_size = writer.size
        member.filed_compression = "gzip"

    def read(self, fileobj, log=None):
        """Read the archive from `fileobj`."""
        try:
            tar = tarfile.open(fileobj=fileobj, mode="r|*", bufsize=CHUNK_SIZE)
        except tarfile.TarError as e:
            raise DockerSaveError(f"not a tar archive: {e}")
        try:
            for info in tar:
                name = _normalise(info.name)
                if name is None:
                    continue
                if info.issym():
                    if info.linkname.startswith("/"):
                        target = None
                    else:
                        target = _normalise(
                            posixpath.join(
                                posixpath.dirname(name), info.linkname
                            )
                        )
                    self.links[name] = target
                elif info.islnk():
                    self.links[name] = _normalise(info.linkname)
                elif info.isreg():
                    if log is not None and info.size > SMALL_MEMBER:
                        log(f"Reading {name} ({info.size} bytes)")
                    self.members[name] = self._readMember(
                        name, info.size, tar.extractfile(info)
                    )
        except (tarfile.TarError, EOFError, zlib.error) as e:
            raise DockerSaveError(f"cannot read the archive: {e}")
        # Read the padding after the end of the archive too, so that the
        # writer is not cut off (docker save would fail with EPIPE).
        while fileobj.read(CHUNK_SIZE):
            pass
        for future in self._verifying:
            future.result()
        self._findImages()

    def close(self):
        for executor in (self._verifiers, self._deflaters):
            executor.shutdown(cancel_futures=True)

    def _lookup(self, name):
        """The member `name` refers to, following links."""
        path = _normalise(name) if isinstance(name, str) else None
        for _ in range(MAX_LINKS):
            if path is None:
                break
            if path in self.members:
                return self.members[path]
            if path not in self.links:
                break
            path = self.links[path]
        raise DockerSaveError(f"the archive has no file {name!r}")

    def _document(self, member, what):
        if member.size > MAX_DOCUMENT:
            raise DockerSaveError(f"{what} is too large")
        try:
            return json.loads(member.read())
        except ValueError as e:
            raise DockerSaveError(f"{what} is not valid JSON: {e}")
        except RecursionError:
            raise DockerSaveError(f"{what} is nested too deeply")

    def _layer(self, member):
        if member.diff_id is None:
            if member.size > SMALL_MEMBER:
                raise DockerSaveError(f"{member.name} is not a layer")
            self._processLayer(member, member.chunks(), wait=True)
        return member

    def _findImages(self):
        if "manifest.json" not in self.members:
            raise DockerSaveError("the archive has no manifest.json")
        manifest = self._document(
            self.members["manifest.json"], "manifest.json"
        )
        if not isinstance(manifest, list) or not manifest:
            raise DockerSaveError("manifest.json lists no images")
        for entry in manifest:
            self.images.append(self._readImage(entry))
        if self.keep_compressed:
            self._findRegistryManifests()

    def _readImage(self, entry):
        if not isinstance(entry, dict):
            raise DockerSaveError(
                "manifest.json has an entry that is not an object"
            )
        config_name = entry.get("Config")
        layer_names = entry.get("Layers")
        repo_tags = entry.get("RepoTags") or []
        if not isinstance(layer_names, list) or not all(
            isinstance(name, str) for name in layer_names
        ):
            raise DockerSaveError(
                f"manifest.json: bad Layers for {config_name}"
            )
        if not isinstance(repo_tags, list) or not all(
            isinstance(tag, str) for tag in repo_tags
        ):
            raise DockerSaveError(
                f"manifest.json: bad RepoTags for {config_name}"
            )
        config_member = self._lookup(config_name)
        match = DIGEST_NAME.search(config_name)
        if match is not None and match.group(1) != config_member.sha256:
            raise DockerSaveError(
                f"config {config_name} does not match the image ID (its "
                f"content has sha256:{config_member.sha256})"
            )
        config = self._document(config_member, f"config {config_name}")
        try:
            diff_ids = config["rootfs"]["diff_ids"]
        except (KeyError, TypeError):
            raise DockerSaveError(f"config {config_name} has no diff_ids")
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layer_names):
            raise DockerSaveError(
                f"config {config_name} has {len(diff_ids)} diff_ids for "
                f"{len(layer_names)} layers"
            )
        layers = []
        for layer_name, diff_id in zip(layer_names, diff_ids):
            expected = _digest_hex(diff_id, f"config {config_name}: diff_id")
            member = self._layer(self._lookup(layer_name))
            if member.diff_id != expected:
                raise DockerSaveError(
                    f"layer {layer_name} does not match its diff_id {diff_id} "
                    f"(its content has sha256:{member.diff_id})"
                )
            layer_id = _layer_id(layer_name)
            if layer_id is None:
                layer_id = member.diff_id
            layers.append(SavedLayer(member, layer_id))
        image = SavedImage(config_member, config, repo_tags, layers)
        image.platform = _platform_of(config)
        return image

    def _findRegistryManifests(self):
        """Find each image's manifest where it can be kept byte for byte.

        That is where its layers arrived compressed, as the containerd
        image store saves them: then the manifest found through
        `index.json` is the one the registry knows.  Descriptors whose
        blobs were not saved (other platforms) are passed over, and so
        are attestation manifests, which match no image.
        """
        if "index.json" not in self.members:
            return
        candidates = {}
        seen = set()

        def walk(document, depth):
            if depth > MAX_INDEX_DEPTH:
                raise DockerSaveError("index.json nests too deeply")
            descriptors = document.get("manifests")
            if not isinstance(descriptors, list):
                return
            for descriptor in descriptors:
                if not isinstance(descriptor, dict):
                    continue
                try:
                    hex_digest = _digest_hex(descriptor.get("digest"), "")
                except DockerSaveError:
                    continue
                member = self.members.get(f"blobs/sha256/{hex_digest}")
                if member is None or hex_digest in seen:
                    continue
                seen.add(hex_digest)
                if member.size != descriptor.get("size"):
                    raise DockerSaveError(
                        f"index.json: {member.name} is {member.size} bytes, "
                        f"its descriptor says {descriptor.get('size')}"
                    )
                child = self._document(member, member.name)
                if not isinstance(child, dict):
                    continue
                media_type = child.get("mediaType") or descriptor.get(
                    "mediaType"
                )
                if media_type in INDEX_MEDIA_TYPES or "manifests" in child:
                    walk(child, depth + 1)
                elif media_type in MANIFEST_MEDIA_TYPES:
                    candidates.setdefault(_config_digest_of(child), []).append(
                        (member, media_type, child, descriptor)
                    )

        index = self._document(self.members["index.json"], "index.json")
        if isinstance(index, dict):
            walk(index, 1)
        for image in self.images:
            if any(layer.member.compression is None for layer in image.layers):
                continue
            for member, media_type, manifest, descriptor in candidates.get(
                image.config_digest, []
            ):
                if _describes(manifest, image):
                    image.manifest = member.read()
                    image.manifest_media_type = media_type
                    platform = descriptor.get("platform")
                    if isinstance(platform, dict):
                        image.platform = platform
                    break


def _read_exactly(fileobj, size, name):
    data = fileobj.read(size)
    while len(data) < size:
        more = fileobj.read(size - len(data))
        if not more:
            raise DockerSaveError(f"{name} is truncated")
        data += more
    return data


def _normalise(name):
    """A member name as a relative path, or None if it leaves the archive.

    Tar names are bytes, and tarfile keeps those that are not UTF-8 with
    surrogate escapes.  No JSON document can name such a member, so it
    is None too: it is junk, skipped without being logged.
    """
    try:
        name.encode("UTF-8")
    except UnicodeEncodeError:
        return None
    path = posixpath.normpath(name.lstrip("/"))
    if path == "." or path.split("/")[0] == "..":
        return None
    return path


def _layer_id(layer_name):
    """The name today's Launchpad gets a layer under: `<layer_id>.tar.gz`.

    Docker <= 24 names layers `<layer_id>/layer.tar`; in later versions
    they are blobs, whose hex digest serves.
    """
    parts = layer_name.split("/")
    if len(parts) >= 2 and parts[-1] == "layer.tar":
        candidate = parts[-2]
    else:
        candidate = parts[-1]
        for suffix in (".tar.gz", ".tgz", ".tar"):
            if candidate.endswith(suffix):
                candidate = candidate[: -len(suffix)]
                break
    if LAYER_ID.match(candidate):
        return candidate
    return None


def _platform_of(config):
    platform = {}
    for key in ("architecture", "os", "variant"):
        value = config.get(key) if isinstance(config, dict) else None
        if isinstance(value, str) and value:
            platform[key] = value
    return platform or None


def _config_digest_of(manifest):
    config = manifest.get("config")
    if isinstance(config, dict):
        return config.get("digest")
    return None


def _describes(manifest, image):
    """Whether a registry manifest describes exactly this image's blobs."""
    config = manifest.get("config")
    layers = manifest.get("layers")
    if (
        not isinstance(config, dict)
        or not isinstance(layers, list)
        or len(layers) != len(image.layers)
        or config.get("size") != image.config_member.size
    ):
        return False
    for descriptor, layer in zip(layers, image.layers):
        if not isinstance(descriptor, dict) or (
            descriptor.get("digest"),
            descriptor.get("size"),
        ) != (f"sha256:{layer.member.sha256}", layer.member.size):
            return False
    return True


def read_docker_save(
    fileobj, workdir, keep_compressed=False, log=None, jobs=None
):
    """Read a `docker save` archive from a stream and verify it.

    :param fileobj: the archive, read once, in order (a pipe will do).
    :param workdir: an empty directory for the files to be kept.
    :param keep_compressed: keep zstd layers as they are; otherwise they
        are gzipped, since today's Launchpad only handles gzip layers.
    :param log: a callable taking a line of progress, or None.
    :param jobs: how many threads compress layers (the number of CPUs by
        default).
    :return: a `DockerSave`, whose `images` are the `SavedImage`s.
    :raises DockerSaveError: if the archive is not a usable image, with
        the reason on one line.
    """
    if jobs is None:
        jobs = os.cpu_count() or 1
    save = DockerSave(workdir, keep_compressed, jobs)
    try:
        save.read(fileobj, log=log)
    finally:
        save.close()
    return save


def _full_name(name):
    """A name as Docker's index.json gives it: with its registry."""
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return name
    if not rest:
        return f"docker.io/library/{name}"
    return f"docker.io/{name}"


def _source(sources, layer):
    """The repository a layer was pulled from, or ""."""
    return sources.get(f"sha256:{layer.member.sha256}") or sources.get(
        layer.diff_id, ""
    )


def _link(source, target):
    if not os.path.exists(target):
        os.link(source, target)
    return target


def write_legacy_upload(save, outdir, sources=None):
    """Lay the images out as the files today's Launchpad fetches.

    `manifest.json` (its `Config` and `Layers` naming the files below),
    `digests.json`, each config as `<image id>.json` and each layer as
    `<layer_id>.tar.gz`.  `digests.json` holds, for each image, the
    layers by diff_id: the sha256 of the `.tar.gz` file, the repository
    it was pulled from (or ""), and the layer_id.

    :param sources: maps layer digests or diff_ids ("sha256:...") to the
        repository the layer was pulled from.
    :return: a list of (name, path) for the files to be filed.
    """
    sources = sources or {}
    files = {}
    manifest = []
    digests = []
    for image in save.images:
        config_name = f"{image.config_member.sha256}.json"
        if config_name not in files:
            files[config_name] = _writeBytes(
                outdir, config_name, image.config_member.read()
            )
        layer_names = []
        section = {}
        for layer in image.layers:
            name = f"{layer.layer_id}.tar.gz"
            if name not in files:
                files[name] = _link(
                    layer.member.filed_path, os.path.join(outdir, name)
                )
            # A layer repeated in the image is described once, by its
            # first occurrence, as Launchpad looks layers up by diff_id.
            described = section.setdefault(
                layer.diff_id,
                {
                    "digest": layer.member.filed_sha256,
                    "source": _source(sources, layer),
                    "layer_id": layer.layer_id,
                },
            )
            layer_names.append(f"{described['layer_id']}.tar.gz")
        manifest.append(
            {
                "Config": config_name,
                "RepoTags": image.repo_tags,
                "Layers": layer_names,
            }
        )
        digests.append(section)
    files["manifest.json"] = _writeJSON(outdir, "manifest.json", manifest)
    files["digests.json"] = _writeJSON(outdir, "digests.json", digests)
    return sorted(files.items())


def _writeBytes(outdir, name, data):
    path = os.path.join(outdir, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _writeJSON(outdir, name, document):
    data = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return _writeBytes(outdir, name, data.encode("UTF-8"))


def _descriptor(media_type, data):
    return {
        "mediaType": media_type,
        "digest": f"sha256:{hashlib.sha256(data).hexdigest()}",
        "size": len(data),
    }


def write_oci_upload(save, outdir, sources=None):
    """Lay the images out as an OCI upload.

    An OCI image layout (`oci-layout`, `index.json` with one entry per
    image and name, its blobs) whose files are named for filing by
    `oci_upload_file_name`.  Each image's config is the saved one, byte
    for byte; its manifest is the saved registry manifest where every
    layer was kept (see `SavedImage`), otherwise an OCI manifest over
    the layers as filed: gzip, or kept as they arrived.

    :param sources: as for `write_legacy_upload`; the sources of an
        image's layers go in its index entry's SOURCES_ANNOTATION.
    :return: a list of (name, path) for the files to be filed.
    """
    sources = sources or {}
    files = {}

    def add_blob(hex_digest, path=None, data=None):
        name = oci_upload_file_name(f"blobs/sha256/{hex_digest}")
        if name not in files:
            if data is not None:
                files[name] = _writeBytes(outdir, name, data)
            else:
                files[name] = _link(path, os.path.join(outdir, name))

    entries = []
    for image in save.images:
        config_data = image.config_member.read()
        add_blob(image.config_member.sha256, data=config_data)
        layer_sources = {}
        layer_descriptors = []
        for layer in image.layers:
            member = layer.member
            digest = member.filed_sha256
            add_blob(digest, path=member.filed_path)
            layer_descriptors.append(
                {
                    "mediaType": LAYER_MEDIA_TYPES[member.filed_compression],
                    "digest": f"sha256:{digest}",
                    "size": member.filed_size,
                }
            )
            source = _source(sources, layer)
            if source:
                layer_sources[f"sha256:{digest}"] = source
        if image.manifest is not None:
            manifest_data = image.manifest
            media_type = image.manifest_media_type
        else:
            media_type = MEDIA_TYPE_OCI_MANIFEST
            manifest_data = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": MEDIA_TYPE_OCI_MANIFEST,
                    "config": _descriptor(MEDIA_TYPE_OCI_CONFIG, config_data),
                    "layers": layer_descriptors,
                },
                separators=(",", ":"),
            ).encode("UTF-8")
        descriptor = _descriptor(media_type, manifest_data)
        add_blob(
            _digest_hex(descriptor["digest"], "manifest"), data=manifest_data
        )
        if image.platform:
            descriptor["platform"] = image.platform
        # One entry per name, as Docker writes; an untagged image has one
        # entry without names.
        for name in image.repo_tags or [None]:
            entry = dict(descriptor)
            annotations = {}
            if name is not None:
                tag = name.rsplit(":", 1)[-1]
                annotations["io.containerd.image.name"] = _full_name(name)
                annotations["org.opencontainers.image.ref.name"] = tag
            if layer_sources:
                annotations[SOURCES_ANNOTATION] = json.dumps(
                    layer_sources, sort_keys=True, separators=(",", ":")
                )
            if annotations:
                entry["annotations"] = annotations
            entries.append(entry)
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_INDEX,
        "manifests": entries,
    }
    files["index.json"] = _writeJSON(outdir, "index.json", index)
    files["oci-layout"] = _writeJSON(
        outdir, "oci-layout", {"imageLayoutVersion": "1.0.0"}
    )
    return sorted(files.items())
