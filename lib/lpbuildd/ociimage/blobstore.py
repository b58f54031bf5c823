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
    "Blob",
    "BlobStore",
]

import hashlib
import os
import queue
import threading
from dataclasses import dataclass

from lpbuildd.ociimage.compression import (
    CHUNK,
    DiffIDHasher,
    LayerCompressor,
    sniff,
)
from lpbuildd.ociimage.errors import CorruptArchive, UnsafeArchive
from ocitypes.digest import Digest
from ocitypes.safejson import MAX_JSON_SIZE

# Small documents are held in memory up to this total, then spooled.
MEMORY_BUDGET = 32 * 1024 * 1024
MAX_LINK_DEPTH = 40


@dataclass
class Blob:
    """What we learnt about one regular archive member."""

    name: str
    size: int
    digest: Digest  # sha256 of the member's bytes, as stored
    kind: str  # "tar", "gzip", "zstd" or "data"
    diff_id: Digest = None  # sha256 of the uncompressed tar, for layers
    path: str = None  # file holding the output bytes (see below)
    out_digest: Digest = None  # digest of the bytes at `path`
    out_size: int = None
    data: bytes = None  # small documents kept in memory

    @property
    def is_layer(self):
        return self.kind in ("tar", "gzip", "zstd")

    @property
    def compression(self):
        """The compression of the layer blob we output."""
        return None if self.kind == "data" else self.kind

    def read_bytes(self):
        """The member's own bytes, for documents (size-checked)."""
        if self.data is not None:
            return self.data
        if self.kind != "data" or self.size > MAX_JSON_SIZE:
            raise CorruptArchive(
                f"{self.name!r} is not a JSON document ({self.size} bytes)"
            )
        with open(self.path, "rb") as f:
            return f.read()


class BlobStore:
    """Hashes, classifies and files members under a work directory."""

    def __init__(self, workdir, compression="gzip", threads=1):
        self.workdir = workdir
        self.compression = compression
        self.threads = threads
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
        """Consume a file member's data and record a `Blob`."""
        self._check_new(member.name)
        chunks = member.read_chunks(CHUNK)
        head = next(chunks, b"")
        kind = sniff(head) if member.size else None
        raw_hash = hashlib.sha256()
        if kind == "tar":
            blob = self._compress(member, head, chunks, raw_hash)
        elif kind in ("gzip", "zstd"):
            blob = self._keep(member, kind, head, chunks, raw_hash)
        else:
            blob = self._document(member, head, chunks, raw_hash)
        self.bytes_in += member.size
        self.blobs[member.name] = blob
        return blob

    def _compress(self, member, head, chunks, raw_hash):
        path, f = self._tempfile()
        with f:
            compressor = LayerCompressor(f, self.compression, self.threads)
            for data in _chain(head, chunks):
                raw_hash.update(data)
                compressor.write(data)
            out_digest, out_size = compressor.finish()
        digest = Digest("sha256", raw_hash.hexdigest())
        return Blob(
            member.name,
            member.size,
            digest,
            "tar",
            diff_id=digest,
            path=path,
            out_digest=out_digest,
            out_size=out_size,
        )

    def _keep(self, member, kind, head, chunks, raw_hash):
        path, f = self._tempfile()
        hasher = _Background(DiffIDHasher(kind, f"layer {member.name!r}"))
        try:
            with f:
                for data in _chain(head, chunks):
                    hasher.update(data)
                    raw_hash.update(data)
                    f.write(data)
        finally:
            diff_id = hasher.finish()
        digest = Digest("sha256", raw_hash.hexdigest())
        return Blob(
            member.name,
            member.size,
            digest,
            kind,
            diff_id=diff_id,
            path=path,
            out_digest=digest,
            out_size=member.size,
        )

    def _document(self, member, head, chunks, raw_hash):
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
        return Blob(
            member.name,
            member.size,
            digest,
            "data",
            path=path,
            out_digest=digest,
            out_size=member.size,
            data=data,
        )

    def lookup(self, name):
        """The `Blob` at an archive name, following links; or None."""
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
                except BaseException as e:
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
