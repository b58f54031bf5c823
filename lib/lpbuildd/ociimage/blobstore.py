# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Process every archive member once, as it streams past.

The metadata that says what a member is (`manifest.json`, `index.json`)
comes after the layers in every archive format, so each member is
classified by its content: uncompressed tar layers are compressed
deterministically on the fly, gzip/zstd layers are kept byte-exact and
decompressed only to compute their diff_id, and small documents are kept
for the resolver.  Every member is hashed, so any of them can later be
checked against the digest that names it.
"""

__all__ = [
    "BlobStore",
    "DocumentBlob",
    "LayerBlob",
]

import hashlib
import itertools
import os
from dataclasses import dataclass

from lpbuildd.ociimage.compression import (
    CHUNK,
    DiffIDHasher,
    ExpansionGuard,
    LayerCompressor,
    sniff,
)
from lpbuildd.ociimage.errors import CorruptArchive, UnsafeArchive
from lpbuildd.ociimage.pipeline import Stage
from ocitypes.digest import Digest
from ocitypes.safejson import MAX_JSON_SIZE

# Small documents are held in memory up to this total, then spooled.
MEMORY_BUDGET = 16 * 1024 * 1024
MAX_LINK_DEPTH = 40
LAYER_COMPRESSIONS = ("gzip", "zstd")


@dataclass(frozen=True)
class DocumentBlob:
    """A member that is not a layer: a JSON document, or anything else.

    Its bytes are held in memory (`data`) or, past the memory budget or
    the JSON size limit, spooled to a file (`path`): exactly one of them.
    """

    name: str
    size: int
    digest: Digest  # sha256 of the member's bytes
    data: bytes = None
    path: str = None
    # What its first bytes look like ("tar", "gzip", "zstd", ...): a
    # small member that looks like a layer is only made one (by
    # `BlobStore.as_layer`) if an image refers to it.
    kind: str = None

    def __post_init__(self):
        if (self.data is None) == (self.path is None):
            raise ValueError(f"{self.name!r}: give either data or a path")
        if self.data is not None and len(self.data) != self.size:
            raise ValueError(f"{self.name!r}: data is not {self.size} bytes")

    def read_all(self):
        """The member's bytes (at most `MAX_JSON_SIZE`: see `add`)."""
        if self.data is not None:
            return self.data
        with open(self.path, "rb") as f:
            return f.read()

    def read_bytes(self):
        """The member's bytes, if small enough to be a JSON document."""
        if self.data is not None:
            return self.data
        if self.size > MAX_JSON_SIZE:
            raise CorruptArchive(
                f"{self.name!r} is not a JSON document ({self.size} bytes)"
            )
        with open(self.path, "rb") as f:
            return f.read()


@dataclass(frozen=True)
class LayerBlob:
    """A layer member: a tar archive, or one compressed with gzip or zstd.

    `path` holds the layer blob we output, compressed with `compression`
    (until the layout writer moves it into place): the member itself
    when it arrived compressed, else the member compressed by us
    (`recompressed`), whose diff_id is then its digest.
    """

    name: str
    size: int
    digest: Digest  # sha256 of the member's bytes, as stored
    diff_id: Digest  # sha256 of the uncompressed tar
    compression: str  # of the output blob: "gzip" or "zstd"
    recompressed: bool
    path: str
    out_digest: Digest  # digest of the bytes at `path`
    out_size: int
    # SHA-1 (hex) of the bytes at `path`, when the store was asked for it.
    out_sha1: str = None

    def __post_init__(self):
        if self.compression not in LAYER_COMPRESSIONS:
            raise ValueError(
                f"{self.name!r}: unknown compression {self.compression!r}"
            )
        if self.recompressed:
            if self.diff_id != self.digest:
                raise ValueError(
                    f"{self.name!r}: a tar's diff_id is its digest"
                )
        elif (self.out_digest, self.out_size) != (self.digest, self.size):
            raise ValueError(f"{self.name!r}: a kept layer is output as is")


class BlobStore:
    """Hashes, classifies and files members under a work directory.

    `add` handles a member as it streams past.  A caller that can read
    members out of order (a seekable archive) splits it: `reserve` each
    member in archive order, `process` them in any threads (it only
    touches the member and thread-safe counters), then `file` each blob.
    """

    def __init__(self, workdir, compression="gzip", threads=1, sha1=False):
        self.workdir = workdir
        self.compression = compression
        self.threads = threads
        # Also SHA-1 every layer blob as it is written (`out_sha1`): a
        # builder files them under that name, and reading them all
        # again for it would be a second pass over the whole upload.
        self.sha1 = sha1
        # Bounds the decompression of all layers together, so that many
        # small bombs cost no more than one: see `ExpansionGuard`.
        self.guard = ExpansionGuard("the archive's layers together")
        self.blobs = {}
        self.links = {}
        self.memory_used = 0
        self.bytes_in = 0
        self._pending = set()
        self._counter = itertools.count(1)  # next() is thread-safe

    def _tempfile(self):
        path = os.path.join(self.workdir, f".member-{next(self._counter)}")
        return path, open(path, "xb")

    def add_link(self, name, target):
        self._check_new(name)
        self.links[name] = target

    def _check_new(self, name):
        if name in self.blobs or name in self.links or name in self._pending:
            raise CorruptArchive(f"archive member {name!r} appears twice")

    def add(self, member):
        """Consume a file member's data; record and return its blob.

        :return: a `LayerBlob` or a `DocumentBlob`.
        """
        self.reserve(member)
        blob = self.process(member)
        self.file(member.name, blob)
        return blob

    def reserve(self, member):
        """Claim a file member's name and count its bytes, in archive
        order, before it is processed."""
        self._check_new(member.name)
        self._pending.add(member.name)
        self.guard.add_compressed(member.size)
        self.bytes_in += member.size

    def file(self, name, blob):
        """Record the blob `process` returned for a reserved member."""
        self._pending.discard(name)
        self.blobs[name] = blob

    def process(self, member):
        """Consume a reserved member's data; return its blob.

        Safe to call from several threads at once, for different
        members; small documents are kept in memory only when called
        from one thread (see `_document`).
        """
        chunks = member.read_chunks(CHUNK)
        head = next(chunks, b"")
        kind = sniff(head) if member.size else None
        raw_hash = hashlib.sha256()
        if member.size <= MAX_JSON_SIZE:
            # Small members cost nothing until an image refers to them:
            # junk that looks like a layer gets no thread, no file.
            blob = self._document(member, head, chunks, raw_hash, kind)
        elif kind == "tar":
            blob = self._compress(member, head, chunks, raw_hash)
        elif kind in LAYER_COMPRESSIONS:
            blob = self._keep(member, kind, head, chunks, raw_hash)
        else:
            blob = self._document(member, head, chunks, raw_hash, kind)
        return blob

    def _compress(self, member, head, chunks, raw_hash):
        path, f = self._tempfile()
        with f:
            compressor = LayerCompressor(
                f, self.compression, self.threads, sha1=self.sha1
            )
            try:
                for data in _chain(head, chunks):
                    raw_hash.update(data)
                    compressor.write(data)
                out_digest, out_size = compressor.finish()
            except BaseException:
                # A truncated archive or a failed write: no compressor
                # thread may outlive the error.
                compressor.abort()
                raise
        digest = Digest("sha256", raw_hash.hexdigest())
        return LayerBlob(
            member.name,
            member.size,
            digest,
            diff_id=digest,
            compression=self.compression,
            recompressed=True,
            path=path,
            out_digest=out_digest,
            out_size=out_size,
            out_sha1=compressor.out_sha1,
        )

    def _keep(self, member, kind, head, chunks, raw_hash):
        """Keep a compressed layer as it is; compute its diff_id.

        Three threads share the work: this one reads, hashes and writes
        the compressed bytes, a `Stage` inflates them and another (in
        the `DiffIDHasher`) hashes the inflated bytes.  Inflating and
        hashing release the GIL, so a layer uses up to three cores.  A
        SHA-1, if asked for, gets a fourth `Stage`.
        """
        path, f = self._tempfile()
        hasher = DiffIDHasher(
            kind, f"layer {member.name!r}", self.guard, threaded=True
        )
        inflate = Stage(hasher.update, "inflate")
        sha1 = hashlib.sha1() if self.sha1 else None
        sha1_stage = Stage(sha1.update, "sha1") if self.sha1 else None
        try:
            with f:
                for data in _chain(head, chunks):
                    inflate.put(data)
                    if sha1_stage is not None:
                        sha1_stage.put(data)
                    raw_hash.update(data)
                    f.write(data)
        finally:
            # Whatever stopped the reading, the layer's own error (a
            # corrupt or truncated stream) says more; raised first.
            try:
                inflate.close()
            except BaseException:
                hasher.abort()
                raise
            finally:
                if sha1_stage is not None:
                    sha1_stage.close()
            diff_id = hasher.finish()
        digest = Digest("sha256", raw_hash.hexdigest())
        return LayerBlob(
            member.name,
            member.size,
            digest,
            diff_id=diff_id,
            compression=kind,
            recompressed=False,
            path=path,
            out_digest=digest,
            out_size=member.size,
            out_sha1=sha1.hexdigest() if sha1 is not None else None,
        )

    def _document(self, member, head, chunks, raw_hash, kind=None):
        keep = (
            member.size <= MAX_JSON_SIZE
            and self.memory_used + member.size <= MEMORY_BUDGET
        )
        if keep:
            data = b"".join(_chain(head, chunks))
            raw_hash.update(data)
            self.memory_used += len(data)
            path = None
        else:
            data = None
            path, f = self._tempfile()
            with f:
                for chunk in _chain(head, chunks):
                    raw_hash.update(chunk)
                    f.write(chunk)
        digest = Digest("sha256", raw_hash.hexdigest())
        return DocumentBlob(
            member.name, member.size, digest, data=data, path=path, kind=kind
        )

    def as_layer(self, blob):
        """The `LayerBlob` for a blob, or None if it is not a layer.

        A small member that looks like a layer is compressed, or has
        its diff_id computed, now, once: only referenced blobs cost
        work.
        """
        if isinstance(blob, LayerBlob):
            return blob
        if blob is None or blob.kind not in ("tar",) + LAYER_COMPRESSIONS:
            return None
        data = blob.read_all()
        what = f"layer {blob.name!r}"
        path, f = self._tempfile()
        with f:
            if blob.kind == "tar":
                compressor = LayerCompressor(
                    f, self.compression, 1, sha1=self.sha1
                )
                try:
                    compressor.write(data)
                    out_digest, out_size = compressor.finish()
                except BaseException:
                    compressor.abort()
                    raise
                layer = LayerBlob(
                    blob.name,
                    blob.size,
                    blob.digest,
                    diff_id=blob.digest,
                    compression=self.compression,
                    recompressed=True,
                    path=path,
                    out_digest=out_digest,
                    out_size=out_size,
                    out_sha1=compressor.out_sha1,
                )
            else:
                hasher = DiffIDHasher(blob.kind, what, self.guard)
                for i in range(0, len(data), CHUNK):
                    hasher.update(data[i : i + CHUNK])
                diff_id = hasher.finish()
                f.write(data)
                layer = LayerBlob(
                    blob.name,
                    blob.size,
                    blob.digest,
                    diff_id=diff_id,
                    compression=blob.kind,
                    recompressed=False,
                    path=path,
                    out_digest=blob.digest,
                    out_size=blob.size,
                    out_sha1=(
                        hashlib.sha1(data).hexdigest() if self.sha1 else None
                    ),
                )
        self.blobs[blob.name] = layer
        return layer

    def lookup(self, name):
        """The blob at an archive name, following links; or None."""
        seen = []
        while name in self.links:
            if name in seen or len(seen) > MAX_LINK_DEPTH:
                raise UnsafeArchive(f"link cycle in the archive at {name!r}")
            seen.append(name)
            name = self.links[name]
        return self.blobs.get(name)


def _chain(head, chunks):
    if head:
        yield head
    yield from chunks
