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
import os
import queue
import threading
from dataclasses import dataclass

from lpbuildd.ociimage.compression import (
    CHUNK,
    DiffIDHasher,
    ExpansionGuard,
    LayerCompressor,
    sniff,
)
from lpbuildd.ociimage.errors import CorruptArchive, UnsafeArchive
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
    """Hashes, classifies and files members under a work directory."""

    def __init__(self, workdir, compression="gzip", threads=1):
        self.workdir = workdir
        self.compression = compression
        self.threads = threads
        # Bounds the decompression of all layers together, so that many
        # small bombs cost no more than one: see `ExpansionGuard`.
        self.guard = ExpansionGuard("the archive's layers together")
        self.blobs = {}
        self.links = {}
        self.memory_used = 0
        self.bytes_in = 0
        self._counter = 0

    def _tempfile(self):
        self._counter += 1
        path = os.path.join(self.workdir, f".member-{self._counter}")
        return path, open(path, "xb")

    def add_link(self, name, target):
        self._check_new(name)
        self.links[name] = target

    def _check_new(self, name):
        if name in self.blobs or name in self.links:
            raise CorruptArchive(f"archive member {name!r} appears twice")

    def add(self, member):
        """Consume a file member's data; record and return its blob.

        :return: a `LayerBlob` or a `DocumentBlob`.
        """
        self._check_new(member.name)
        self.guard.compressed += member.size
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
        self.bytes_in += member.size
        self.blobs[member.name] = blob
        return blob

    def _compress(self, member, head, chunks, raw_hash):
        path, f = self._tempfile()
        with f:
            compressor = LayerCompressor(f, self.compression, self.threads)
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
        )

    def _keep(self, member, kind, head, chunks, raw_hash):
        path, f = self._tempfile()
        hasher = _Background(
            DiffIDHasher(kind, f"layer {member.name!r}", self.guard)
        )
        try:
            with f:
                for data in _chain(head, chunks):
                    hasher.update(data)
                    raw_hash.update(data)
                    f.write(data)
        finally:
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
                compressor = LayerCompressor(f, self.compression, 1)
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


class _Background:
    """Run a `DiffIDHasher` in its own thread, fed through a short queue.

    Decompressing and hashing release the GIL, so a compressed layer's
    diff_id is computed on the other core while this thread reads,
    hashes and writes the raw bytes.
    """

    def __init__(self, hasher):
        self._hasher = hasher
        self._queue = queue.Queue(maxsize=4)
        self._error = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            data = self._queue.get()
            if data is None:
                return
            if self._error is None:
                try:
                    self._hasher.update(data)
                except Exception as e:
                    # Whatever stops the hasher (a corrupt or hostile
                    # stream, MemoryError) is raised again in the
                    # reading thread, by `update` or `finish`; this
                    # thread only carries on draining the queue.
                    self._error = e

    def update(self, data):
        if self._error is not None:
            raise self._error
        self._queue.put(data)

    def finish(self):
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._hasher.finish()


def _chain(head, chunks):
    if head:
        yield head
    yield from chunks
