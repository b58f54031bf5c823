# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Build container image archives in code, for tests.

Tests never ship archive files: they describe the image they want
(`make_layer`, `make_image`), pick the tool whose output they want to
imitate (one builder per format in FORMATS.md), and, for hostile cases,
tamper with the resulting `ArchiveBuilder` before serialising it.

Every builder is deterministic: the same arguments give the same bytes.

Layers too big for memory (benchmarks) can be given as `LayerFile`
values wherever a layer's bytes go: the format builders use their
digest and size as given, and `ArchiveBuilder.write` streams them.

Formats (see the format builders' docstrings for the exact layouts):

* `legacy_docker_save`: Docker 1.10-24 `docker save`.
* `podman_docker_archive`: podman/skopeo `docker-archive:`.
* `kaniko_tarball`: kaniko / go-containerregistry `tarball.Write`.
* `docker25_classic`: Docker 25+ `docker save`, graphdriver store.
* `docker25_containerd`: Docker 25+ `docker save`, containerd store.
* `oci_archive`: BuildKit `type=oci`, `podman save --format oci-archive`.
* `pre_1_10_save`: Docker before 1.10 (no `manifest.json`).

Hostile recipes (``b`` is any builder's result):

* Path traversal in manifest paths:
  ``traversal_manifest_archive("../etc/passwd")`` or
  ``tamper_json(b, "manifest.json", lambda m: m[0]["Layers"].__setitem__(
  0, "../etc/passwd"))``.
* Traversal / absolute member names: ``b.add_file("../../evil", b"x")``,
  ``b.add_file("/etc/passwd", b"x")``, or ``b.rename(name, "../" + name)``.
* Symlink and hardlink escapes: ``link_escape_archive("../../x")``,
  ``link_escape_archive("/etc/passwd", hardlink=True)``.
* Symlink cycles: ``symlink_cycle_archive()`` (two links pointing at
  each other) or ``symlink_cycle_archive(self_loop=True)``.
* Digest mismatch: ``corrupt_member(b, "blobs/sha256/<hex>")`` flips a
  byte (name and descriptor stay, content changes).  Size mismatch:
  ``size_mismatch_archive()``.  diff_id mismatch with consistent
  digests and sizes: ``diff_id_mismatch_archive()``.
* Truncated archives: ``b.truncated(1000)`` or ``b.truncated(-10)``.
* Missing blobs: ``b.remove("blobs/sha256/<hex>")``; or
  ``docker25_containerd`` whose other platforms' blobs are absent.
* Invalid / oversized / deeply nested JSON:
  ``b.replace("index.json", b"{not json")``,
  ``b.replace("manifest.json", big_json(5 << 20, base=[{}]))``,
  ``b.replace("index.json", deep_json(100000))``.
* Index cycles: ``index_cycle_archive()``; deep but honest nesting:
  ``nested_index_archive(depth)``.
* Malformed digests: ``malformed_digest_archive(d)`` for each ``d`` in
  `MALFORMED_DIGESTS`.
* Compression bombs: ``gzip_bomb(10 << 30)``, ``zstd_bomb(10 << 30)``;
  use ``replace_blob`` to make one a layer with consistent descriptors.
  An xz stream asking for a huge decoder dictionary:
  ``xz_with_dictionary(data, 40)``.
* Lying tar headers (malformed PAX records, negative or base-256 sizes,
  sparse and GNU long-name types, bad checksums):
  ``raw_tar((raw_tar_header(b"PaxHeader", n, type=b"x"),
  pax_record(b"size", b"-5")), (raw_tar_header(b"f", 1), b"x"))``.
* zstd skippable frames (which Docker accepts):
  ``zstd_skippable_frame() + frames``.
"""

__all__ = [
    "ArchiveBuilder",
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_LAYER_FOREIGN",
    "DOCKER_LAYER_GZIP",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "EMPTY_LAYER",
    "EMPTY_LAYER_DIFF_ID",
    "ESTARGZ_TOC_DIGEST",
    "ESTARGZ_UNCOMPRESSED_SIZE",
    "Image",
    "LayerFile",
    "MALFORMED_DIGESTS",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_LAYER_ZSTD",
    "OCI_MANIFEST",
    "big_json",
    "canonical_json",
    "chain_ids",
    "corrupt_member",
    "deep_json",
    "diff_id_mismatch_archive",
    "docker25_classic",
    "docker25_containerd",
    "estargz_compress",
    "gzip_bomb",
    "index_cycle_archive",
    "kaniko_tarball",
    "legacy_docker_save",
    "link_escape_archive",
    "make_image",
    "make_layer",
    "malformed_digest_archive",
    "nested_index_archive",
    "oci_archive",
    "podman_docker_archive",
    "pax_record",
    "pre_1_10_save",
    "raw_tar",
    "raw_tar_header",
    "replace_blob",
    "sha256_digest",
    "size_mismatch_archive",
    "symlink_cycle_archive",
    "tamper_json",
    "traversal_manifest_archive",
    "xz_with_dictionary",
    "zstd_bomb",
    "zstd_skippable_frame",
]

import copy
import gzip
import hashlib
import io
import json
import lzma
import random
import shutil
import struct
import tarfile
import zlib
from datetime import datetime, timezone

import zstandard

from ocitypes.testing import MALFORMED_DIGESTS, big_json, deep_json

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST_LIST = (
    "application/vnd.docker.distribution.manifest.list.v2+json"
)
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = (
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)
IN_TOTO = "application/vnd.in-toto+json"
ESTARGZ_TOC_DIGEST = "containerd.io/snapshot/stargz/toc.digest"
ESTARGZ_UNCOMPRESSED_SIZE = "io.containers.estargz.uncompressed-size"
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_IMAGE_NAME = "io.containerd.image.name"

DEFAULT_CREATED = "2026-01-01T00:00:00Z"
# When a (pre-28) Docker daemon "ran" the save, for metadata mtimes.
SAVE_TIME = 1767312000  # 2026-01-02T00:00:00Z
OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'

EMPTY_LAYER = b"\0" * 1024
EMPTY_LAYER_DIFF_ID = (
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
)


def sha256_digest(data):
    """Return ``"sha256:<hex>"`` for `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hex(digest):
    return digest.split(":", 1)[1]


class LayerFile:
    """Member content held in a file, for archives too big for memory.

    `digest` (``"sha256:<hex>"``) and `size` are taken as given, e.g.
    computed while the file was written; they are not checked.
    """

    def __init__(self, path, digest, size):
        self.path = path
        self.digest = digest
        self.size = size

    def __len__(self):
        return self.size

    def read_bytes(self):
        with open(self.path, "rb") as f:
            return f.read()

    def copy_to(self, fileobj, chunk_size=1 << 20):
        with open(self.path, "rb") as f:
            shutil.copyfileobj(f, fileobj, chunk_size)

    def __repr__(self):
        return "<LayerFile %s %s %d bytes>" % (
            self.path,
            self.digest[:19],
            self.size,
        )


def _content(data):
    """Member content as stored: a `LayerFile`, or bytes."""
    return data if isinstance(data, LayerFile) else bytes(data)


def _content_bytes(data):
    """The bytes of member content (read from its file if need be)."""
    return data.read_bytes() if isinstance(data, LayerFile) else data


def _content_digest(data):
    """``"sha256:<hex>"`` of member content (a `LayerFile` or bytes)."""
    if isinstance(data, LayerFile):
        return data.digest
    return sha256_digest(data)


def canonical_json(obj):
    """Compact JSON with sorted keys, as bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _json(obj):
    """Compact JSON keeping the insertion order (like Go structs)."""
    return json.dumps(obj, separators=(",", ":")).encode()


def _epoch(created):
    return int(
        datetime.fromisoformat(created.replace("Z", "+00:00"))
        .astimezone(timezone.utc)
        .timestamp()
    )


# ---------------------------------------------------------------- layers

_WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo "
    "lima mike november oscar papa quebec romeo sierra tango uniform "
    "victor whiskey xray yankee zulu launchpad buildd ubuntu noble jammy"
).split()


def _tar_header(info):
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _tar_padding(size):
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def _tar_entry(info, data=b""):
    """Serialise one member like Go's archive/tar (no record padding)."""
    return _tar_header(info) + data + _tar_padding(len(data))


def _tarinfo(name, type=tarfile.REGTYPE, size=0, mode=0o644, mtime=0):
    info = tarfile.TarInfo(name)
    info.type = type
    info.size = size
    info.mode = mode
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _varied_content(rng, size):
    out = []
    total = 0
    while total < size:
        line = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12)))
        line = "%s %d\n" % (line, rng.randint(0, 1 << 30))
        out.append(line)
        total += len(line)
    return "".join(out).encode()[:size]


def make_layer(files=None, seed=0, size=None):
    """Return a deterministic uncompressed tar layer.

    :param files: maps path -> bytes (a regular file) or None (a
        directory).  Parent directories are not added implicitly.
    :param seed: varies the default content and the `size` content.
    :param size: if given, add files of seeded, compressible but varied
        text totalling about `size` bytes (split into 64 KiB files).
    Members are sorted by path; mtime 0, uid/gid 0, no user names.
    Without `files` or `size`, the layer holds one small file that
    depends on `seed`.
    """
    files = dict(files or {})
    if size is not None:
        rng = random.Random(seed)
        content = _varied_content(rng, size)
        for i in range(0, max(len(content), 1), 65536):
            files["data/%d/part-%04d.txt" % (seed, i // 65536)] = content[
                i : i + 65536
            ]
    elif not files:
        files = {"seed-%d.txt" % seed: b"layer with seed %d\n" % seed}
    out = []
    for path in sorted(files):
        data = files[path]
        if data is None:
            out.append(_tar_entry(_tarinfo(path, tarfile.DIRTYPE, mode=0o755)))
        else:
            out.append(_tar_entry(_tarinfo(path, size=len(data)), data))
    out.append(b"\0" * 1024)
    return b"".join(out)


def _layer_entries(layer):
    """Split a tar layer into the raw bytes of each member (no EOF)."""
    entries = []
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:") as tar:
        for member in tar:
            end = member.offset_data + member.size
            end += -member.size % tarfile.BLOCKSIZE
            if not member.isreg():
                end = member.offset_data
            entries.append((member, layer[member.offset : end]))
    return entries


def _gzip_footer(toc_offset):
    """The 51-byte estargz footer: an empty gzip member with an extra."""
    payload = b"%016xSTARGZ" % toc_offset
    extra = b"SG" + struct.pack("<H", len(payload)) + payload
    header = b"\x1f\x8b\x08\x04\0\0\0\0\0\xff" + struct.pack("<H", len(extra))
    # An empty stored deflate block, then CRC32 and ISIZE of nothing.
    return header + extra + b"\x01\x00\x00\xff\xff" + b"\0" * 8


def estargz_compress(layer):
    """Convert a tar layer to eStargz.

    Returns ``(blob, uncompressed, toc_digest)``: `blob` is a gzip stream
    of several concatenated members (one per tar member, one for the
    TOC, the 51-byte footer); `uncompressed` is what it decompresses to
    (the layer's members, the ``stargz.index.json`` TOC member and the
    tar end marker), i.e. the diff_id source.
    """
    parts = []
    raw = []
    toc_entries = []
    offset = 0
    for member, entry in _layer_entries(layer):
        data = gzip.compress(entry, mtime=0)
        item = {
            "name": member.name,
            "type": {tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink"}.get(
                member.type, "reg"
            ),
            "mode": member.mode,
            "offset": offset,
        }
        if member.isreg():
            content = layer[
                member.offset_data : member.offset_data + member.size
            ]
            item["size"] = member.size
            item["digest"] = sha256_digest(content)
        toc_entries.append(item)
        parts.append(data)
        raw.append(entry)
        offset += len(data)
    toc = json.dumps(
        {"version": 1, "entries": toc_entries}, indent="\t"
    ).encode()
    toc_tar = (
        _tar_entry(_tarinfo("stargz.index.json", size=len(toc)), toc)
        + b"\0" * 1024
    )
    parts.append(gzip.compress(toc_tar, mtime=0))
    raw.append(toc_tar)
    parts.append(_gzip_footer(offset))
    return b"".join(parts), b"".join(raw), sha256_digest(toc)


def chain_ids(diff_ids):
    """Return the OCI ChainIDs of a list of diff_ids."""
    result = []
    for diff_id in diff_ids:
        if not result:
            result.append(diff_id)
        else:
            result.append(
                sha256_digest(("%s %s" % (result[-1], diff_id)).encode())
            )
    return result


# ----------------------------------------------------------------- images


_LAYER_MEDIA_TYPES = {
    None: (OCI_LAYER, DOCKER_LAYER),
    "gzip": (OCI_LAYER_GZIP, DOCKER_LAYER_GZIP),
    "estargz": (OCI_LAYER_GZIP, DOCKER_LAYER_GZIP),
    "zstd": (OCI_LAYER_ZSTD, OCI_LAYER_ZSTD),
}


def _compress(data, compression):
    if compression is None:
        return data
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    if compression == "xz":
        return lzma.compress(data)
    raise ValueError("unknown compression %r" % (compression,))


class Image:
    """One single-platform image, with every derived form a format needs.

    Attributes:
      `layers`: uncompressed layer tars (for eStargz, the decompressed
        stream including the TOC member).
      `source_layers`: the layers as given (before eStargz conversion).
      `diff_ids`: ``sha256:<hex>`` of each of `layers`.
      `compressed_layers`: the stored layer blobs (`layers` itself when
        `layer_compression` is None; may be given, e.g. as `LayerFile`
        values, else made from `layers`).
      `layer_digests`, `layer_sizes`: of `compressed_layers`.
      `layer_annotations`: per-layer dicts (eStargz TOC annotations).
      `config`, `config_digest`, `config_dict`; `id` = `config_digest`.
      `tags`: tuple of references; `platform`: OCI platform dict.
    """

    def __init__(
        self,
        layers,
        architecture="amd64",
        os="linux",
        variant=None,
        tags=("example.com/app:latest",),
        created=DEFAULT_CREATED,
        layer_compression=None,
        config_overrides=None,
        compressed_layers=None,
    ):
        self.source_layers = list(layers)
        self.architecture = architecture
        self.os = os
        self.variant = variant
        self.tags = tuple(tags or ())
        self.created = created
        self.layer_compression = layer_compression
        self.config_overrides = config_overrides
        self.layer_annotations = [{} for _ in self.source_layers]
        if layer_compression == "estargz":
            self.layers = []
            self.compressed_layers = []
            for i, layer in enumerate(self.source_layers):
                blob, raw, toc_digest = estargz_compress(layer)
                self.layers.append(raw)
                self.compressed_layers.append(blob)
                self.layer_annotations[i] = {
                    ESTARGZ_TOC_DIGEST: toc_digest,
                    ESTARGZ_UNCOMPRESSED_SIZE: str(len(raw)),
                }
        elif compressed_layers is not None:
            self.layers = list(self.source_layers)
            self.compressed_layers = list(compressed_layers)
        else:
            self.layers = list(self.source_layers)
            self.compressed_layers = [
                _compress(layer, layer_compression) for layer in self.layers
            ]
        self.diff_ids = [_content_digest(layer) for layer in self.layers]
        self.layer_digests = [
            _content_digest(b) for b in self.compressed_layers
        ]
        self.layer_sizes = [len(b) for b in self.compressed_layers]
        self.platform = {"architecture": architecture, "os": os}
        if variant:
            self.platform["variant"] = variant
        config = {
            "architecture": architecture,
            "config": {
                "Cmd": ["/bin/sh"],
                "Env": [
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
                    ":/sbin:/bin"
                ],
                "WorkingDir": "/",
            },
            "created": created,
            "history": [
                {
                    "created": created,
                    "created_by": "layer %d # archivebuilder" % i,
                }
                for i in range(len(self.layers))
            ],
            "os": os,
            "rootfs": {"type": "layers", "diff_ids": list(self.diff_ids)},
        }
        if variant:
            config["variant"] = variant
        config.update(config_overrides or {})
        self.config_dict = config
        self.config = canonical_json(config)
        self.config_digest = sha256_digest(self.config)
        self.id = self.config_digest

    def layer_media_types(self, docker=False):
        """Media types of `compressed_layers` (OCI or Docker names)."""
        media_type = _LAYER_MEDIA_TYPES[self.layer_compression][int(docker)]
        return [media_type] * len(self.layers)

    def layer_descriptors(self, docker=False):
        return [
            _descriptor(media_type, digest, size, annotations or None)
            for media_type, digest, size, annotations in zip(
                self.layer_media_types(docker),
                self.layer_digests,
                self.layer_sizes,
                self.layer_annotations,
            )
        ]

    def manifest(self, docker=False, config_platform=False, layers=None):
        """Return the image manifest as bytes (OCI or Docker schema 2)."""
        config = _descriptor(
            DOCKER_CONFIG if docker else OCI_CONFIG,
            self.config_digest,
            len(self.config),
        )
        if config_platform:
            config["platform"] = dict(self.platform)
        return _json(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
                "config": config,
                "layers": (
                    layers
                    if layers is not None
                    else self.layer_descriptors(docker)
                ),
            }
        )

    def with_compression(self, layer_compression):
        """The same image with its layers stored another way."""
        if layer_compression == self.layer_compression:
            return self
        if any(isinstance(layer, LayerFile) for layer in self.source_layers):
            raise ValueError("cannot recompress layers held in files")
        return Image(
            self.source_layers,
            architecture=self.architecture,
            os=self.os,
            variant=self.variant,
            tags=self.tags,
            created=self.created,
            layer_compression=layer_compression,
            config_overrides=self.config_overrides,
        )

    def __repr__(self):
        return "<Image %s %s %r>" % (
            self.config_digest[:19],
            "/".join(self.platform.values()),
            self.tags,
        )


def make_image(
    layers=None,
    architecture="amd64",
    os="linux",
    variant=None,
    tags=("example.com/app:latest",),
    created=DEFAULT_CREATED,
    layer_compression=None,
    config_overrides=None,
):
    """Return an `Image`.

    :param layers: list of tar bytes or of ``files`` dicts for
        `make_layer`; default one small layer.
    :param layer_compression: None, "gzip", "zstd" or "estargz".
    :param config_overrides: top-level config keys to set or replace.
    """
    if layers is None:
        layers = [make_layer()]
    layers = [
        make_layer(files=layer) if isinstance(layer, dict) else layer
        for layer in layers
    ]
    return Image(
        layers,
        architecture=architecture,
        os=os,
        variant=variant,
        tags=tags,
        created=created,
        layer_compression=layer_compression,
        config_overrides=config_overrides,
    )


def _descriptor(media_type, digest, size, annotations=None, platform=None):
    desc = {"mediaType": media_type, "digest": digest, "size": size}
    if annotations:
        desc["annotations"] = dict(annotations)
    if platform:
        desc["platform"] = dict(platform)
    return desc


def _split_tag(ref):
    """Split ``repo:tag`` (the tag defaults to "latest")."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return name, tag


def _full_reference(ref):
    """Normalise a familiar reference like containerd does."""
    name, tag = _split_tag(ref)
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = "docker.io/library/" + name
    elif "." not in first and ":" not in first and first != "localhost":
        name = "docker.io/" + name
    return "%s:%s" % (name, tag)


def _as_list(images):
    if isinstance(images, Image):
        return [images]
    return list(images)


# ---------------------------------------------------------------- archives


def junk_members_with_byte_names(large=2 << 20):
    """Tar members no image refers to, whose names are not UTF-8.

    Tar names are bytes: a ustar name, a PAX path, a GNU long name and a
    symlink target holding bytes that are not UTF-8, one member larger
    than ``large``.  Serialised bytes, to put before an archive's own
    members.
    """
    out = []
    for name, fmt, size in (
        (b"junk-\xff\xfe.tar", tarfile.USTAR_FORMAT, 512),
        (b"junk/pax-\xc3\x28/blob", tarfile.PAX_FORMAT, large),
        (b"junk/" + b"long-\xe9" * 30, tarfile.GNU_FORMAT, 1024),
    ):
        info = _tarinfo(name.decode("utf-8", "surrogateescape"), size=size)
        out.append(
            info.tobuf(fmt, "utf-8", "surrogateescape")
            + bytes(size)
            + _tar_padding(size)
        )
    link = _tarinfo("junk-link", tarfile.SYMTYPE, mode=0o777)
    link.linkname = b"target-\xff".decode("utf-8", "surrogateescape")
    out.append(link.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape"))
    return b"".join(out)


class ArchiveBuilder:
    """An ordered, mutable list of tar members, serialised on demand.

    Names are compared without a trailing slash.  Every member has uid
    and gid 0 and no user names; mtimes default to 0.

    Format builders set `images` (the `Image` objects used) and `info`
    (a dict of facts about the layout, e.g. ``"index_digest"``,
    ``"manifest_digests"``, ``"missing_blobs"``).
    """

    def __init__(self, mtime=0):
        self.mtime = mtime
        self._members = []
        self.images = []
        self.info = {}

    @staticmethod
    def _key(name):
        return name.rstrip("/") if name not in ("/", "") else name

    def _index(self, name):
        key = self._key(name)
        for i, (info, _) in enumerate(self._members):
            if self._key(info.name) == key:
                return i
        raise KeyError(name)

    def _mtime(self, mtime):
        return self.mtime if mtime is None else mtime

    def add_file(self, name, data, mode=0o644, mtime=None):
        info = _tarinfo(name, size=len(data), mode=mode)
        info.mtime = self._mtime(mtime)
        self._members.append((info, _content(data)))
        return info

    def add_dir(self, name, mode=0o755, mtime=None):
        info = _tarinfo(self._key(name), tarfile.DIRTYPE, mode=mode)
        info.mtime = self._mtime(mtime)
        self._members.append((info, b""))
        return info

    def add_symlink(self, name, target, mtime=None):
        info = _tarinfo(name, tarfile.SYMTYPE, mode=0o777)
        info.linkname = target
        info.mtime = self._mtime(mtime)
        self._members.append((info, b""))
        return info

    def add_hardlink(self, name, target, mtime=None):
        info = _tarinfo(name, tarfile.LNKTYPE)
        info.linkname = target
        info.mtime = self._mtime(mtime)
        self._members.append((info, b""))
        return info

    def add_raw(self, tarinfo, data=b""):
        """Add a member exactly as given (its size is NOT adjusted)."""
        self._members.append((tarinfo, bytes(data)))
        return tarinfo

    def remove(self, name):
        """Remove the first member called `name`."""
        del self._members[self._index(name)]

    def replace(self, name, data):
        """Replace a member's content, keeping its header otherwise."""
        i = self._index(name)
        info = copy.copy(self._members[i][0])
        info.size = len(data)
        self._members[i] = (info, _content(data))

    def rename(self, old, new):
        i = self._index(old)
        info = copy.copy(self._members[i][0])
        info.name = new
        self._members[i] = (info, self._members[i][1])

    def move_to_end(self, name):
        self._members.append(self._members.pop(self._index(name)))

    def move_to_front(self, name):
        self._members.insert(0, self._members.pop(self._index(name)))

    def sort(self, key=None):
        """Sort members by name (or by `key` applied to the name)."""
        self._members.sort(key=lambda m: (key or str)(m[0].name))

    def names(self):
        return [info.name for info, _ in self._members]

    def get(self, name):
        """The content of member `name` (b"" for links and dirs)."""
        return _content_bytes(self._members[self._index(name)][1])

    def get_info(self, name):
        return self._members[self._index(name)][0]

    def __contains__(self, name):
        try:
            self._index(name)
        except KeyError:
            return False
        return True

    def __len__(self):
        return len(self._members)

    def blob_name(self, digest):
        return "blobs/sha256/" + _hex(digest)

    def to_bytes(self, compression=None):
        """Serialise: None, "gzip", "xz" or "zstd" for the whole stream."""
        data = b"".join(
            _tar_entry(info, _content_bytes(content))
            for info, content in self._members
        )
        return _compress(data + b"\0" * 1024, compression)

    def write(self, path, compression=None):
        """Write the archive to `path`.

        Uncompressed, it is streamed: `LayerFile` members are copied in
        chunks, never held in memory.
        """
        if compression is not None:
            with open(path, "wb") as f:
                f.write(self.to_bytes(compression))
            return path
        with open(path, "wb") as f:
            for info, content in self._members:
                if isinstance(content, LayerFile):
                    f.write(_tar_header(info))
                    content.copy_to(f)
                    f.write(_tar_padding(content.size))
                else:
                    f.write(_tar_entry(info, content))
            f.write(b"\0" * 1024)
        return path

    def truncated(self, nbytes, compression=None):
        """The serialised archive cut short.

        A positive `nbytes` keeps that many bytes; a negative one drops
        that many from the end.
        """
        return self.to_bytes(compression)[:nbytes]

    def copy(self):
        other = ArchiveBuilder(self.mtime)
        other._members = [(copy.copy(i), d) for i, d in self._members]
        other.images = list(self.images)
        other.info = copy.deepcopy(self.info)
        return other


def _walk_key(name):
    # Go's filepath.Walk order: lexical per directory level.
    return name.rstrip("/").split("/")


def _v1_documents(image):
    """Legacy v1 ids and JSON documents, one per layer.

    Like moby's v1.CreateID, an id depends on the layer chain, the
    parent id and (for the top layer) the image config.
    """
    ids = []
    docs = []
    parent = ""
    top = len(image.diff_ids) - 1
    for i, chain_id in enumerate(chain_ids(image.diff_ids)):
        seed = {"layer_id": chain_id, "parent": parent}
        if i == top:
            seed["config"] = image.id
        v1id = hashlib.sha256(canonical_json(seed)).hexdigest()
        doc = {"id": v1id}
        if parent:
            doc["parent"] = parent
        doc["created"] = image.created
        doc["container_config"] = {"Cmd": None, "Env": None}
        if i == top:
            doc["architecture"] = image.architecture
            doc["config"] = image.config_dict.get("config", {})
        doc["os"] = image.os
        ids.append(v1id)
        docs.append(_json(doc))
        parent = v1id
    return ids, docs


def _repositories(entries):
    repos = {}
    for tags, v1id in entries:
        for ref in tags:
            name, tag = _split_tag(ref)
            repos.setdefault(name, {})[tag] = v1id
    return repos


def legacy_docker_save(
    images,
    duplicate_symlinks=True,
    repositories=True,
    layer_sources=None,
):
    """Docker 1.10-24 ``docker save`` (moby image/tarexport, pre #44598).

    Layout, in filepath.Walk order::

        <config hex>.json
        <v1id>/  <v1id>/VERSION ("1.0")  <v1id>/json  <v1id>/layer.tar
        manifest.json    [{"Config", "RepoTags" (null if untagged),
                           "Layers": ["<v1id>/layer.tar", ...],
                           "LayerSources"?}]
        repositories     {repo: {tag: <last v1id>}} (if tagged)

    A layer whose bytes were already written (in this image or an earlier
    one) becomes a symlink ``layer.tar -> ../<first v1id>/layer.tar``
    (``duplicate_symlinks=False`` writes the bytes again).  Images
    sharing a layer chain share the ``<v1id>`` directory.

    :param layer_sources: maps diff_id -> descriptor (dict) or True (a
        foreign Windows-style descriptor is made up).  Those layers get a
        ``LayerSources`` entry and no ``layer.tar`` at all.
    """
    images = _as_list(images)
    layer_sources = dict(layer_sources or {})
    files = {}
    manifest = []
    repo_entries = []
    written = {}
    for image in images:
        mtime = _epoch(image.created)
        ids, docs = _v1_documents(image)
        sources = {}
        for v1id, doc, diff_id, layer, digest, size in zip(
            ids,
            docs,
            image.diff_ids,
            image.layers,
            image.layer_digests,
            image.layer_sizes,
        ):
            if v1id + "/VERSION" in files:
                continue
            files[v1id] = ("dir", None, mtime)
            files[v1id + "/VERSION"] = ("file", b"1.0", mtime)
            files[v1id + "/json"] = ("file", doc, mtime)
            if diff_id in layer_sources:
                source = layer_sources[diff_id]
                if source is True:
                    source = {
                        "mediaType": DOCKER_LAYER_FOREIGN,
                        "size": size,
                        "digest": digest,
                        "urls": [
                            "https://mcr.microsoft.com/v2/blobs/" + digest
                        ],
                    }
                sources[diff_id] = source
                continue
            path = v1id + "/layer.tar"
            if diff_id in written and duplicate_symlinks:
                files[path] = ("symlink", "../" + written[diff_id], mtime)
            else:
                files[path] = ("file", layer, mtime)
                written.setdefault(diff_id, path)
        files[_hex(image.config_digest) + ".json"] = (
            "file",
            image.config,
            mtime,
        )
        entry = {
            "Config": _hex(image.config_digest) + ".json",
            "RepoTags": list(image.tags) or None,
            "Layers": [v1id + "/layer.tar" for v1id in ids],
        }
        if sources:
            entry["LayerSources"] = sources
        manifest.append(entry)
        if image.tags and ids:
            repo_entries.append((image.tags, ids[-1]))
    files["manifest.json"] = ("file", _json(manifest), 0)
    repos = _repositories(repo_entries)
    if repositories and repos:
        files["repositories"] = ("file", _json(repos), 0)
    builder = _from_files(files, key=_walk_key)
    builder.images = images
    builder.info["v1_ids"] = [_v1_documents(i)[0] for i in images]
    return builder


def _from_files(files, key=None, file_mode=0o644):
    builder = ArchiveBuilder()
    for name in sorted(files, key=key):
        kind, data, mtime = files[name]
        if kind == "dir":
            builder.add_dir(name, mtime=mtime)
        elif kind == "symlink":
            builder.add_symlink(name, data, mtime=mtime)
        else:
            builder.add_file(name, data, mode=file_mode, mtime=mtime)
    return builder


def podman_docker_archive(images):
    """podman/skopeo ``docker-archive:`` (containers/image tarfile writer).

    Written in stream order, mode 0444, mtime 0, no directory entries::

        <diff_id hex>.tar            (each layer once)
        <config hex>.json
        <v1id>/layer.tar -> ../<diff_id hex>.tar   (v1id = chain id)
        <v1id>/VERSION  <v1id>/json
        repositories                 ({} when untagged)
        manifest.json                ("RepoTags": [] when untagged; last)
    """
    images = _as_list(images)
    builder = ArchiveBuilder()
    seen = set()
    manifest = []
    repo_entries = []
    for image in images:
        for diff_id, layer in zip(image.diff_ids, image.layers):
            name = _hex(diff_id) + ".tar"
            if name not in seen:
                seen.add(name)
                builder.add_file(name, layer, mode=0o444)
        config_name = _hex(image.config_digest) + ".json"
        if config_name not in seen:
            seen.add(config_name)
            builder.add_file(config_name, image.config, mode=0o444)
        ids = [_hex(c) for c in chain_ids(image.diff_ids)]
        parent = None
        for v1id, diff_id in zip(ids, image.diff_ids):
            if v1id + "/layer.tar" not in seen:
                seen.add(v1id + "/layer.tar")
                builder.add_symlink(
                    v1id + "/layer.tar", "../%s.tar" % _hex(diff_id)
                )
                builder.add_file(v1id + "/VERSION", b"1.0", mode=0o444)
                doc = {"id": v1id}
                if parent:
                    doc["parent"] = parent
                doc.update({"created": image.created, "os": image.os})
                builder.add_file(v1id + "/json", _json(doc), mode=0o444)
            parent = v1id
        manifest.append(
            {
                "Config": config_name,
                "RepoTags": list(image.tags),
                "Layers": ["%s.tar" % _hex(d) for d in image.diff_ids],
            }
        )
        if image.tags and ids:
            repo_entries.append((image.tags, ids[-1]))
    builder.add_file(
        "repositories", _json(_repositories(repo_entries)), mode=0o444
    )
    builder.add_file("manifest.json", _json(manifest), mode=0o444)
    builder.images = images
    return builder


def kaniko_tarball(image):
    """kaniko / go-containerregistry ``tarball.Write``.

    Members (in order): ``sha256:<config hex>``, ``<hex>.tar.gz`` per
    layer (gzip; hex = compressed digest), ``manifest.json``.  The image
    is converted to gzip layers if needed (`builder.images[0]`).
    """
    image = image.with_compression("gzip")
    builder = ArchiveBuilder()
    builder.add_file(image.config_digest, image.config)
    seen = set()
    for digest, blob in zip(image.layer_digests, image.compressed_layers):
        if digest not in seen:
            seen.add(digest)
            builder.add_file(_hex(digest) + ".tar.gz", blob)
    manifest = [
        {
            "Config": image.config_digest,
            "RepoTags": list(image.tags),
            "Layers": [_hex(d) + ".tar.gz" for d in image.layer_digests],
        }
    ]
    builder.add_file("manifest.json", _json(manifest))
    builder.images = [image]
    return builder


def _version_tuple(version):
    return tuple(int(part) for part in version.split(".")) + (0, 0, 0)


def docker25_classic(images, version="27.0"):
    """Docker 25+ ``docker save`` with the classic (graphdriver) store.

    moby image/tarexport/save.go after PR #44598; filepath.Walk order::

        blobs/  blobs/sha256/
        blobs/sha256/<diff_id hex>     uncompressed layers (once each)
        blobs/sha256/<config hex>      config
        blobs/sha256/<manifest hex>    one OCI manifest per image
        blobs/sha256/<v1 json hex>     legacy v1 layer JSON (unreferenced)
        index.json      OCI index; one entry per tag with annotations
                        io.containerd.image.name (full reference) and
                        org.opencontainers.image.ref.name (the tag)
        manifest.json   paths into blobs/sha256/, LayerSources for every
                        layer (application/vnd.oci.image.layer.v1.tar)
        oci-layout
        repositories    {repo: {tag: <last diff_id hex>}} (if tagged)

    Version quirks:

    * 25.0.0: OCI manifest layers in shuffled order (map iteration; so
      a repeated layer appears only once there); manifest.json keeps
      the config order.
    * < 25.0.3: ``"manifests": null`` in index.json when no image is
      tagged.  Later: one untagged entry, but only if nothing was added
      before, so a multi-image save of untagged images keeps only the
      first one in index.json (moby #51389); manifest.json is complete.
    * < 26.1: the config descriptor carries ``platform``.
    * < 28.0: blob mtimes are the image's creation time and metadata
      mtimes the save time; 28.0+: all 0.
    """
    images = _as_list(images)
    vt = _version_tuple(version)
    stable = vt >= (28, 0, 0)
    files = {"blobs": ("dir", None, 0), "blobs/sha256": ("dir", None, 0)}
    meta_mtime = 0 if stable else SAVE_TIME
    index_entries = []
    manifest = []
    repo_entries = []
    manifest_digests = []

    def blob(data, mtime):
        files["blobs/sha256/" + _hex(_content_digest(data))] = (
            "file",
            data,
            mtime,
        )

    for image in images:
        mtime = 0 if stable else _epoch(image.created)
        layer_descs = []
        for diff_id, layer in zip(image.diff_ids, image.layers):
            blob(layer, mtime)
            layer_descs.append(_descriptor(OCI_LAYER, diff_id, len(layer)))
        for doc in _v1_documents(image)[1]:
            blob(doc, mtime)
        blob(image.config, mtime)
        oci_layers = layer_descs
        if vt[:3] == (25, 0, 0):
            unique = {d["digest"]: d for d in layer_descs}
            oci_layers = list(reversed(list(unique.values())))
            random.Random(image.config_digest).shuffle(oci_layers)
            if len(oci_layers) > 1 and [
                d["digest"] for d in oci_layers
            ] == list(unique):
                oci_layers.reverse()
        data = image.manifest(
            config_platform=vt < (26, 1, 0), layers=oci_layers
        )
        blob(data, mtime)
        digest = sha256_digest(data)
        manifest_digests.append(digest)
        for ref in image.tags:
            index_entries.append(
                _descriptor(
                    OCI_MANIFEST,
                    digest,
                    len(data),
                    {
                        CONTAINERD_IMAGE_NAME: _full_reference(ref),
                        REF_NAME: _split_tag(ref)[1],
                    },
                )
            )
        if not index_entries and vt >= (25, 0, 3):
            index_entries.append(_descriptor(OCI_MANIFEST, digest, len(data)))
        manifest.append(
            {
                "Config": "blobs/sha256/" + _hex(image.config_digest),
                "RepoTags": list(image.tags) or None,
                "Layers": ["blobs/sha256/" + _hex(d) for d in image.diff_ids],
                "LayerSources": {d["digest"]: d for d in layer_descs},
            }
        )
        if image.tags and image.diff_ids:
            repo_entries.append((image.tags, _hex(image.diff_ids[-1])))
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": index_entries or None,
    }
    files["index.json"] = ("file", _json(index), meta_mtime)
    files["manifest.json"] = ("file", _json(manifest), meta_mtime)
    files["oci-layout"] = ("file", OCI_LAYOUT, meta_mtime)
    repos = _repositories(repo_entries)
    if repos:
        files["repositories"] = ("file", _json(repos), meta_mtime)
    builder = _from_files(files, key=_walk_key)
    builder.images = images
    builder.info["manifest_digests"] = manifest_digests
    return builder


def _parse_platform(text):
    parts = text.split("/")
    if len(parts) == 1:
        return {"architecture": parts[0], "os": "linux"}
    platform = {"architecture": parts[1], "os": parts[0]}
    if len(parts) > 2:
        platform["variant"] = parts[2]
    if platform["os"] not in ("linux", "windows", "freebsd", "darwin"):
        # "arm/v7": architecture then variant.
        platform = {"architecture": parts[0], "os": "linux"}
        platform["variant"] = parts[1]
    return platform


def _attestation(subject_digest, seed):
    statement = canonical_json(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://spdx.dev/Document",
            "subject": [{"digest": {"sha256": _hex(subject_digest)}}],
            "predicate": {"seed": seed},
        }
    )
    config = canonical_json(
        {"architecture": "unknown", "os": "unknown", "rootfs": {}}
    )
    manifest = _json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(
                OCI_CONFIG, sha256_digest(config), len(config)
            ),
            "layers": [
                _descriptor(
                    IN_TOTO,
                    sha256_digest(statement),
                    len(statement),
                    {"in-toto.io/predicate-type": "https://spdx.dev/Document"},
                )
            ],
        }
    )
    return manifest, [config, statement]


def docker25_containerd(
    image,
    other_platforms=("arm64",),
    attestation=True,
    layer_compression="gzip",
    media_types="docker",
    index_media_type=False,
    attestation_blobs=False,
):
    """Docker 25+ ``docker save`` with the containerd image store.

    Name-sorted (blobs before index.json and manifest.json), mtime 0,
    blobs mode 0444::

        blobs/ blobs/sha256/ blobs/sha256/<hex>...
        index.json     -> ONE descriptor of the nested index, annotated
                          io.containerd.image.name / ...ref.name; no
                          top-level mediaType unless index_media_type
        manifest.json  one platform, compressed layer paths, no
                       LayerSources
        oci-layout

    The nested index lists `image`'s manifest, one manifest per entry
    of `other_platforms` ("arm64", "arm/v7", "linux/s390x") whose blobs
    are all MISSING, and (with `attestation`) an attestation manifest
    per platform (platform unknown/unknown, annotations
    vnd.docker.reference.type=attestation-manifest and
    vnd.docker.reference.digest); attestation blobs are missing unless
    `attestation_blobs`.  No ``repositories`` file.

    :param media_types: "docker" (manifest list + schema 2 manifests),
        "oci", or "mixed" (OCI index and manifest, Docker layer types).
    `builder.info`: index_digest, manifest_digest, missing_blobs.
    """
    image = image.with_compression(layer_compression)
    docker = media_types == "docker"
    docker_layers = media_types in ("docker", "mixed")
    if layer_compression == "zstd":
        docker = False
    blobs = {}
    missing = []

    def manifest_for(img):
        docker_types = docker_layers and img.layer_compression != "zstd"
        layers = img.layer_descriptors(docker=docker_types)
        return img.manifest(docker=docker, layers=layers)

    manifest = manifest_for(image)
    manifest_digest = sha256_digest(manifest)
    for data in [manifest, image.config] + image.compressed_layers:
        blobs[_content_digest(data)] = data
    manifest_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    entries = [
        _descriptor(
            manifest_type, manifest_digest, len(manifest), None, image.platform
        )
    ]
    subjects = [(manifest_digest, None)]
    for i, text in enumerate(other_platforms):
        platform = _parse_platform(text)
        other = make_image(
            layers=[make_layer(seed=1000 + i)],
            architecture=platform["architecture"],
            os=platform["os"],
            variant=platform.get("variant"),
            tags=image.tags,
            created=image.created,
            layer_compression=layer_compression,
        )
        other_manifest = manifest_for(other)
        digest = sha256_digest(other_manifest)
        entries.append(
            _descriptor(
                manifest_type, digest, len(other_manifest), None, platform
            )
        )
        missing.extend(
            [digest, other.config_digest] + list(other.layer_digests)
        )
        subjects.append((digest, True))
    if attestation:
        for i, (subject, is_missing) in enumerate(list(subjects)):
            att, parts = _attestation(subject, i)
            att_digest = sha256_digest(att)
            entries.append(
                _descriptor(
                    OCI_MANIFEST,
                    att_digest,
                    len(att),
                    {
                        "vnd.docker.reference.digest": subject,
                        "vnd.docker.reference.type": "attestation-manifest",
                    },
                    {"architecture": "unknown", "os": "unknown"},
                )
            )
            for data in [att] + parts:
                if attestation_blobs and not is_missing:
                    blobs[sha256_digest(data)] = data
                else:
                    missing.append(sha256_digest(data))
    index_type = DOCKER_MANIFEST_LIST if docker else OCI_INDEX
    nested = _json(
        {"schemaVersion": 2, "mediaType": index_type, "manifests": entries}
    )
    nested_digest = sha256_digest(nested)
    blobs[nested_digest] = nested
    top = {"schemaVersion": 2}
    if index_media_type:
        top["mediaType"] = OCI_INDEX
    annotations = None
    if image.tags:
        annotations = {
            CONTAINERD_IMAGE_NAME: _full_reference(image.tags[0]),
            REF_NAME: _split_tag(image.tags[0])[1],
        }
    top["manifests"] = [
        _descriptor(index_type, nested_digest, len(nested), annotations)
    ]
    files = {"blobs": ("dir", None, 0), "blobs/sha256": ("dir", None, 0)}
    for digest, data in blobs.items():
        files["blobs/sha256/" + _hex(digest)] = ("file", data, 0)
    manifest_json = [
        {
            "Config": "blobs/sha256/" + _hex(image.config_digest),
            "RepoTags": list(image.tags),
            "Layers": ["blobs/sha256/" + _hex(d) for d in image.layer_digests],
        }
    ]
    builder = ArchiveBuilder()
    for name in sorted(files):
        kind, data, _ = files[name]
        if kind == "dir":
            builder.add_dir(name)
        else:
            builder.add_file(name, data, mode=0o444)
    builder.add_file("index.json", _json(top))
    builder.add_file("manifest.json", _json(manifest_json))
    builder.add_file("oci-layout", OCI_LAYOUT, mode=0o444)
    builder.images = [image]
    builder.info.update(
        index_digest=nested_digest,
        manifest_digest=manifest_digest,
        missing_blobs=missing,
    )
    return builder


def oci_archive(
    images,
    layer_compression="gzip",
    ref_name="latest",
    index_media_type=True,
    platform=True,
):
    """A pure OCI image layout tarball (BuildKit, podman, skopeo).

    ``blobs/ blobs/sha256/ blobs/sha256/<hex>... index.json oci-layout``,
    name-sorted, no manifest.json.  Layers are converted to
    `layer_compression` (None, "gzip", "zstd", "estargz"; eStargz layers
    carry the TOC annotations).

    :param ref_name: the org.opencontainers.image.ref.name annotation:
        a bare tag ("latest") or a full reference; a str applies to every
        image, a sequence gives one per image (None = no annotation).
    `builder.info["manifest_digests"]` lists the manifests in order.
    """
    images = [i.with_compression(layer_compression) for i in _as_list(images)]
    if ref_name is None or isinstance(ref_name, str):
        ref_names = [ref_name] * len(images)
    else:
        ref_names = list(ref_name)
    files = {"blobs": ("dir", None, 0), "blobs/sha256": ("dir", None, 0)}
    entries = []
    manifest_digests = []
    for image, ref in zip(images, ref_names):
        manifest = image.manifest()
        digest = sha256_digest(manifest)
        manifest_digests.append(digest)
        for data in [manifest, image.config] + image.compressed_layers:
            files["blobs/sha256/" + _hex(_content_digest(data))] = (
                "file",
                data,
                0,
            )
        entries.append(
            _descriptor(
                OCI_MANIFEST,
                digest,
                len(manifest),
                {REF_NAME: ref} if ref else None,
                image.platform if platform else None,
            )
        )
    index = {"schemaVersion": 2}
    if index_media_type:
        index["mediaType"] = OCI_INDEX
    index["manifests"] = entries
    files["index.json"] = ("file", _json(index), 0)
    files["oci-layout"] = ("file", OCI_LAYOUT, 0)
    builder = _from_files(files)
    builder.images = images
    builder.info["manifest_digests"] = manifest_digests
    return builder


def pre_1_10_save(image):
    """Docker < 1.10 ``docker save``: ``<id>/{VERSION,json,layer.tar}``
    directories and ``repositories`` only; no manifest.json, no config.
    """
    ids, docs = _v1_documents(image)
    files = {}
    for v1id, doc, layer in zip(ids, docs, image.layers):
        files[v1id] = ("dir", None, 0)
        files[v1id + "/VERSION"] = ("file", b"1.0", 0)
        files[v1id + "/json"] = ("file", doc, 0)
        files[v1id + "/layer.tar"] = ("file", layer, 0)
    repos = _repositories([(image.tags, ids[-1])] if ids else [])
    files["repositories"] = ("file", _json(repos), 0)
    builder = _from_files(files, key=_walk_key)
    builder.images = [image]
    return builder


# ---------------------------------------------------------------- hostile


_BOMB_CHUNK = 64 << 20


def _bomb_tar_header(uncompressed_size):
    size = uncompressed_size - 512
    size -= size % 512
    return _tar_entry(_tarinfo("bomb", size=max(size, 0)))


def gzip_bomb(uncompressed_size, as_tar=False, single_member=False):
    """gzip data that decompresses to `uncompressed_size` bytes of zeros.

    Cheap: one 64 MiB member of zeros is compressed once (~65 KiB) and
    repeated (concatenated gzip members are one valid gzip stream), so
    a 10 GiB bomb is about 10 MB and takes well under a second.
    `single_member` instead streams one member (slower, ~1 s/GiB).
    With `as_tar`, the stream starts with a tar header for one regular
    file "bomb" filling the rest, so a tar reader keeps reading.
    """
    prefix = _bomb_tar_header(uncompressed_size) if as_tar else b""
    remaining = uncompressed_size - len(prefix)
    if single_member:
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        parts = [comp.compress(prefix)]
        zeros = bytes(1 << 20)
        while remaining > 0:
            n = min(remaining, len(zeros))
            parts.append(comp.compress(zeros[:n]))
            remaining -= n
        parts.append(comp.flush())
        return b"".join(parts)
    parts = [gzip.compress(prefix, mtime=0, compresslevel=9)] if prefix else []
    if remaining >= _BOMB_CHUNK:
        member = gzip.compress(bytes(_BOMB_CHUNK), mtime=0, compresslevel=9)
        parts.extend([member] * (remaining // _BOMB_CHUNK))
    if remaining % _BOMB_CHUNK or not parts:
        parts.append(
            gzip.compress(
                bytes(remaining % _BOMB_CHUNK), mtime=0, compresslevel=9
            )
        )
    return b"".join(parts)


def zstd_bomb(uncompressed_size, as_tar=False):
    """zstd frames that decompress to `uncompressed_size` zero bytes.

    Built like `gzip_bomb` (one 64 MiB frame repeated; concatenated
    frames are valid zstd).  Each frame declares its content size.
    """
    compressor = zstandard.ZstdCompressor(level=19)
    prefix = _bomb_tar_header(uncompressed_size) if as_tar else b""
    remaining = uncompressed_size - len(prefix)
    parts = [compressor.compress(prefix)] if prefix else []
    if remaining >= _BOMB_CHUNK:
        frame = compressor.compress(bytes(_BOMB_CHUNK))
        parts.extend([frame] * (remaining // _BOMB_CHUNK))
    if remaining % _BOMB_CHUNK or not parts:
        parts.append(compressor.compress(bytes(remaining % _BOMB_CHUNK)))
    return b"".join(parts)


def raw_tar_header(
    name=b"member",
    size=0,
    type=b"0",
    linkname=b"",
    size_field=None,
    magic=b"ustar\x0000",
    prefix=b"",
    checksum=None,
):
    """One hand-made 512-byte tar header, hostile fields allowed.

    `size_field` (12 bytes) overrides the octal `size`, e.g. for
    base-256 or garbage; `checksum` (an int) overrides the correct one.
    Names are bytes, written as they are (truncated to their field).
    """
    block = bytearray(512)

    def put(offset, length, value):
        block[offset : offset + length] = value[:length].ljust(length, b"\0")

    put(0, 100, name)
    put(100, 8, b"0000644\0")
    put(108, 8, b"0000000\0")
    put(116, 8, b"0000000\0")
    put(124, 12, size_field or b"%011o\0" % size)
    put(136, 12, b"00000000000\0")
    block[148:156] = b" " * 8
    put(156, 1, type)
    put(157, 100, linkname)
    put(257, 8, magic)
    put(345, 155, prefix)
    if checksum is None:
        checksum = sum(block)
    block[148:156] = b"%06o\0 " % checksum
    return bytes(block)


def pax_record(key, value):
    """One PAX extended header record: ``"<len> <key>=<value>\\n"``."""
    body = b" %s=%s\n" % (key, value)
    length = len(body) + 1
    while len(b"%d" % length) + len(body) != length:
        length += 1
    return b"%d%s" % (length, body)


def raw_tar(*members, end=True):
    """A tar stream of (header, data) pairs, data padded to blocks.

    A pair's data may differ in length from its header's size field: the
    point is to build archives that lie.
    """
    parts = []
    for header, data in members:
        parts.append(header)
        parts.append(data + _tar_padding(len(data)))
    if end:
        parts.append(bytes(1024))
    return b"".join(parts)


def xz_with_dictionary(data, dict_code=37):
    """xz data whose block header claims another LZMA2 dictionary size.

    The dictionary size byte is 0..40: (2 | code & 1) << (code // 2 +
    11), 40 meaning 4 GiB - 1; 37 is 1.5 GiB.  Only the header's claim
    changes (its CRC is recomputed): a decoder must refuse it from the
    header, before allocating anything.
    """
    out = bytearray(
        lzma.compress(
            data,
            format=lzma.FORMAT_XZ,
            filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 1 << 20}],
        )
    )
    # Stream header (12 bytes), then the block header: size, flags (no
    # optional sizes), LZMA2 filter id 0x21, 1 property byte.
    header_size = (out[12] + 1) * 4
    assert out[13:16] == b"\x00\x21\x01", bytes(out[12:20])
    out[16] = dict_code
    end = 12 + header_size - 4
    out[end : end + 4] = struct.pack("<I", zlib.crc32(out[12:end]))
    return bytes(out)


def zstd_skippable_frame(payload=b"skip me", magic_nibble=0):
    """A zstd skippable frame (ignored by decoders; Docker accepts it)."""
    return (
        struct.pack("<I", 0x184D2A50 | magic_nibble)
        + struct.pack("<I", len(payload))
        + payload
    )


def tamper_json(builder, name, mutate):
    """Load member `name` as JSON, call ``mutate(obj)``, store it back.

    If `mutate` returns something other than None, that is stored
    instead.  Only the member itself changes: to tamper with a blob and
    keep the references consistent, use `replace_blob`.
    """
    obj = json.loads(builder.get(name))
    result = mutate(obj)
    builder.replace(name, _json(obj if result is None else result))


def corrupt_member(builder, name, offset=-1):
    """Flip one byte of member `name` (default the last) in place."""
    data = bytearray(builder.get(name))
    data[offset] ^= 0xFF
    builder.replace(name, bytes(data))


def _retarget(obj, old, new, size):
    changed = False
    if isinstance(obj, dict):
        if obj.get("digest") == old:
            obj["digest"] = new
            if "size" in obj and size is not None:
                obj["size"] = size
            changed = True
        for key, value in list(obj.items()):
            if (
                isinstance(value, str)
                and _hex(old) in value
                and key not in ("digest",)
            ):
                obj[key] = value.replace(_hex(old), _hex(new))
                changed = True
            elif isinstance(value, (dict, list)):
                changed |= _retarget(value, old, new, size)
        for key in list(obj):
            if _hex(old) in key:
                obj[key.replace(_hex(old), _hex(new))] = obj.pop(key)
                changed = True
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            if isinstance(value, str) and _hex(old) in value:
                obj[i] = value.replace(_hex(old), _hex(new))
                changed = True
            elif isinstance(value, (dict, list)):
                changed |= _retarget(value, old, new, size)
    return changed


def replace_blob(builder, digest, data, size=None):
    """Replace blob `digest` by `data` and repoint every reference.

    The blob is renamed to ``sha256(data)``; every JSON member that
    mentions the old digest (descriptors, manifest.json paths) is
    rewritten, with the new size (or `size`, to make a size mismatch);
    JSON blobs rewritten this way are themselves replaced recursively.
    Only ``blobs/sha256/<hex>`` members are handled.  Returns the new
    digest.
    """
    new = sha256_digest(data)
    old_name = "blobs/sha256/" + _hex(digest)
    builder.replace(old_name, data)
    builder.rename(old_name, "blobs/sha256/" + _hex(new))
    new_size = len(data) if size is None else size
    for name in builder.names():
        if name not in builder:
            # Renamed by a recursive call.
            continue
        info = builder.get_info(name)
        if not info.isfile() or name == "blobs/sha256/" + _hex(new):
            continue
        content = builder.get(name)
        if _hex(digest).encode() not in content:
            continue
        try:
            obj = json.loads(content)
        except ValueError:
            continue
        if not _retarget(obj, digest, new, new_size):
            continue
        if name.startswith("blobs/sha256/"):
            replace_blob(
                builder, "sha256:" + name.rsplit("/", 1)[1], _json(obj)
            )
        else:
            builder.replace(name, _json(obj))
    return new


def traversal_manifest_archive(path="../etc/passwd", field="Layers"):
    """A legacy save whose manifest.json points outside the archive.

    `field` is "Layers" (the first layer path) or "Config".
    """
    builder = legacy_docker_save([make_image()])

    def mutate(manifest):
        if field == "Config":
            manifest[0]["Config"] = path
        else:
            manifest[0]["Layers"][0] = path

    tamper_json(builder, "manifest.json", mutate)
    return builder


def link_escape_archive(target="../../x", hardlink=False):
    """A legacy save whose first ``layer.tar`` is a link to `target`."""
    builder = legacy_docker_save([make_image()])
    name = builder.info["v1_ids"][0][0] + "/layer.tar"
    builder.remove(name)
    if hardlink:
        builder.add_hardlink(name, target)
    else:
        builder.add_symlink(name, target)
    return builder


def symlink_cycle_archive(self_loop=False):
    """A legacy save of two layers whose layer.tar symlinks form a cycle.

    ``a/layer.tar -> ../b/layer.tar`` and ``b/layer.tar ->
    ../a/layer.tar`` (or, with `self_loop`, ``a/layer.tar ->
    ../a/layer.tar``).
    """
    builder = legacy_docker_save(
        [make_image(layers=[make_layer(seed=1), make_layer(seed=2)])]
    )
    a, b = builder.info["v1_ids"][0]
    for v1id in (a, b):
        builder.remove(v1id + "/layer.tar")
    if self_loop:
        builder.add_symlink(a + "/layer.tar", "../%s/layer.tar" % a)
        builder.add_symlink(b + "/layer.tar", "../%s/layer.tar" % a)
    else:
        builder.add_symlink(a + "/layer.tar", "../%s/layer.tar" % b)
        builder.add_symlink(b + "/layer.tar", "../%s/layer.tar" % a)
    return builder


def size_mismatch_archive(delta=1):
    """An OCI archive whose first layer descriptor's size is off by
    `delta`; the manifest blob and index.json stay consistent.
    """
    builder = oci_archive(make_image())
    image = builder.images[0]
    manifest = json.loads(image.manifest())
    manifest["layers"][0]["size"] += delta
    replace_blob(builder, builder.info["manifest_digests"][0], _json(manifest))
    return builder


def diff_id_mismatch_archive():
    """An OCI archive whose gzip layer is another (valid) layer: digest
    and size match their descriptor, but not the config's diff_id.
    """
    builder = oci_archive(make_image())
    image = builder.images[0]
    other = gzip.compress(make_layer(seed=99), mtime=0)
    replace_blob(builder, image.layer_digests[0], other)
    return builder


def malformed_digest_archive(digest, where="manifest"):
    """An OCI archive with `digest` (a bad string) in a descriptor.

    `where`: "manifest" (the index.json entry) or "layer" (the first
    layer descriptor; the manifest blob is repointed consistently).
    """
    builder = oci_archive(make_image())
    if where == "manifest":
        tamper_json(
            builder,
            "index.json",
            lambda i: i["manifests"][0].__setitem__("digest", digest),
        )
    else:
        manifest = json.loads(builder.images[0].manifest())
        manifest["layers"][0]["digest"] = digest
        replace_blob(
            builder, builder.info["manifest_digests"][0], _json(manifest)
        )
    return builder


def _index_blob(children):
    return _json(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
    )


def index_cycle_archive(self_loop=False):
    """index.json -> index A -> index B -> index A (a cycle).

    Content addressing makes a true cycle impossible, so index A is
    stored under a digest that is NOT its sha256 (the one B and
    index.json name, with A's real size): a verifying reader fails on
    A's digest, a careless one loops.  With `self_loop`, A points at
    itself.  `builder.info`: a_digest (claimed), b_digest.
    """
    builder = oci_archive(make_image())
    a_claimed = sha256_digest(b"index A (claimed)")
    if self_loop:
        # The size of A depends only on the digest string's length.
        a = _index_blob([_descriptor(OCI_INDEX, a_claimed, 0)])
        a = _index_blob([_descriptor(OCI_INDEX, a_claimed, len(a))])
        b_digest = None
    else:
        placeholder = _descriptor(OCI_INDEX, "sha256:" + "0" * 64, 0)
        b = _index_blob([dict(placeholder, digest=a_claimed)])
        a = _index_blob([_descriptor(OCI_INDEX, sha256_digest(b), len(b))])
        b = _index_blob([_descriptor(OCI_INDEX, a_claimed, len(a))])
        a = _index_blob([_descriptor(OCI_INDEX, sha256_digest(b), len(b))])
        b_digest = sha256_digest(b)
        builder.add_file("blobs/sha256/" + _hex(b_digest), b)
    builder.add_file("blobs/sha256/" + _hex(a_claimed), a)
    builder.replace(
        "index.json",
        _index_blob([_descriptor(OCI_INDEX, a_claimed, len(a))]),
    )
    builder.sort()
    builder.info.update(a_digest=a_claimed, b_digest=b_digest)
    return builder


def nested_index_archive(depth, image=None):
    """An honest OCI archive: index.json -> `depth` nested indexes ->
    the image manifest.  Every digest and size is right.
    """
    builder = oci_archive(image or make_image())
    child = json.loads(builder.get("index.json"))["manifests"][0]
    for _ in range(depth):
        data = _index_blob([child])
        digest = sha256_digest(data)
        builder.add_file("blobs/sha256/" + _hex(digest), data)
        child = _descriptor(OCI_INDEX, digest, len(data))
    builder.replace("index.json", _index_blob([child]))
    builder.sort()
    return builder
