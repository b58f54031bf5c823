# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Turn any image archive a builder can produce into an OCI upload.

`gather` reads the archive once, from a file or a pipe, verifying every
blob, and writes an OCI image layout whose layers are compressed blobs
named by digest.
"""

__all__ = [
    "GatherResult",
    "gather",
]

import dataclasses
import errno
import fcntl
import io
import os
import stat
import threading
import time
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lpbuildd.ociimage.blobstore import BlobStore
from lpbuildd.ociimage.compression import (
    CHUNK,
    finish_outer,
    open_outer,
    sniff,
)
from lpbuildd.ociimage.errors import CorruptArchive
from lpbuildd.ociimage.layout import LayoutWriter
from lpbuildd.ociimage.resolver import Resolver
from lpbuildd.ociimage.tarstream import FileReader, iter_members
from ocitypes.safejson import MAX_JSON_SIZE


@dataclass(frozen=True)
class GatherResult:
    """What `gather` did, for the summary and for callers."""

    format: str
    images: tuple  # the `Image` values written
    index: tuple  # the index.json descriptors written
    outdir: str
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    dropped: tuple = ()  # why index entries were skipped, one line each
    # With gather(sha1=True): {path relative to outdir: SHA-1 hex} for
    # every layer blob whose SHA-1 was computed as it was written.
    sha1s: dict = field(default_factory=dict)

    @property
    def layer_count(self):
        return sum(len(image.layers) for image in self.images)


class _CountingStream(io.RawIOBase):
    def __init__(self, stream, report):
        self._stream = stream
        self._report = report
        self.count = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = self._stream.readinto(buffer)
        self.count += n or 0
        self._report.update(self.count)
        return n


PROGRESS_PHASE = "gather"
# `gather` reports progress every this many bytes read, inside members
# too; the display decides how often to redraw.
PROGRESS_STEP = 1 << 20
# Layers processed at once from a regular file, whatever --jobs says:
# each costs about 10 MiB of buffers (see `pipeline.DEPTH`), and an
# uncompressed one `jobs` compression threads of a few MiB each, which
# all the layers in flight together may not exceed
# `MAX_COMPRESSION_THREADS` (or `jobs`, if larger: then one at a time).
MAX_LAYER_WORKERS = 4
MAX_COMPRESSION_THREADS = 16
# How long the walk waits for a worker between checks for signals.
_POLL = 0.5
# Write failures whose message is useless without the path.
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO)


class _Progress:
    """Call `progress(PROGRESS_PHASE, done_bytes, total_bytes)` every
    `PROGRESS_STEP` bytes read, whichever thread reads them.

    Calls are serialised by a lock: never two at once, and `done_bytes`
    never goes down.  `total_bytes` is the archive's size, or None
    from a pipe.
    """

    def __init__(self, callback, total):
        self._callback = callback
        self.total = total or None
        self._lock = threading.Lock()
        self._done = 0
        self._last = 0

    def update(self, done):
        """The archive has been read up to `done` bytes."""
        if self._callback is None:
            return
        with self._lock:
            self._done = max(self._done, done)
            self._maybe_report()

    def add(self, n):
        """`n` more bytes were read (by any thread)."""
        if self._callback is None:
            return
        with self._lock:
            self._done += n
            self._maybe_report()

    def _maybe_report(self):
        if self._done - self._last >= PROGRESS_STEP:
            self._last = self._done
            self._callback(PROGRESS_PHASE, self._done, self.total)

    def done(self, total):
        """The archive is read: `total` bytes (reported unless it was)."""
        if self._callback is None:
            return
        with self._lock:
            if self._last != total:
                self._done = self._last = total
                self._callback(PROGRESS_PHASE, total, self.total)


def _regular_file(source):
    """(fd, offset, bytes from there) if `source` is a regular file."""
    try:
        fd = source.fileno()
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        start = source.tell()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    if start < 0 or start > st.st_size:
        return None
    return fd, start, st.st_size - start


def _read_file(reader, store, jobs, report):
    """Read the members of a tar in a regular file into `store`.

    The headers are walked in archive order (seeking over the data),
    documents read on the way; then the members larger than a document
    (layers) are handed, largest first, to up to `jobs` workers, which
    read their member's range with `os.pread` and process it in
    parallel.  Errors are raised as reading the archive in order would
    raise them: the first failing member's, else the walk's; every
    worker has stopped by then.
    """
    cancelled = threading.Event()
    layers = []  # (member name, member reading its own range)
    walk_error = worker_error = None
    try:
        for member in iter_members(reader):
            if member.kind in ("symlink", "hardlink"):
                store.add_link(member.name, member.target)
                continue
            if member.kind != "file":
                continue
            ranged = dataclasses.replace(
                member, reader=reader.range(member.offset, member.size)
            )
            ranged.reader.count = report.add
            store.reserve(member)
            if member.size <= MAX_JSON_SIZE:
                store.file(member.name, store.process(ranged))
            else:
                ranged.reader.cancelled = cancelled
                layers.append((member.name, ranged))
    except Exception as e:
        walk_error = e  # after every layer found so far
    with ThreadPoolExecutor(jobs, thread_name_prefix="gather") as pool:
        try:
            # Largest first, so that the last layer left running alone
            # is a small one.
            started = {
                name: pool.submit(store.process, ranged)
                for name, ranged in sorted(
                    layers, key=lambda layer: -layer[1].size
                )
            }
            for name, _ in layers:
                future = started[name]
                while not future.done():
                    futures.wait([future], timeout=_POLL)
                try:
                    store.file(name, future.result())
                except Exception as e:
                    if worker_error is None:
                        worker_error = e
                        # The rest comes after it: stop them.
                        cancelled.set()
        except BaseException:
            # Interrupted: stop the workers at their next read; leaving
            # the pool waits for them.
            cancelled.set()
            raise
    error = worker_error or walk_error
    if error is not None:
        raise error


F_SETPIPE_SZ = 1031  # from <linux/fcntl.h>
PIPE_SIZE = 1 << 20


def _enlarge_pipe(source):
    """Ask for a 1 MiB pipe buffer: 64 KiB reads cost a third of the time.

    Best effort; anything that is not a Linux pipe is left alone.
    """
    try:
        fd = source.fileno()
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass


def _read_head(stream, n=1024):
    """Peek at the first bytes of a stream; return (head, stream)."""
    buffered = io.BufferedReader(stream, CHUNK)
    head = buffered.peek(n)
    while len(head) < n:
        more = buffered.peek(n)
        if len(more) == len(head):
            break
        head = more
    return head[:n], buffered


def _check_printable(images, dropped):
    """Everything the summary prints from the archive can be printed.

    The resolver validates names and platforms as it reads them; this
    is the last check before anything is committed, so that a summary
    can never fail (or be forged) after the layout is in place.
    """
    texts = list(dropped)
    for image in images:
        texts.append(str(image.platform))
        texts.extend(p for name in image.names for p in name if p)
    for text in texts:
        if not text.isprintable() or not text.isascii():
            raise CorruptArchive(
                f"the archive names something unprintable: {text[:100]!r}"
            )


def gather(
    source,
    outdir,
    compression="gzip",
    jobs=None,
    sources=None,
    progress=None,
    sha1=False,
):
    """Read an image archive and write an OCI upload at `outdir`.

    :param source: a path, or a binary file object (e.g. a pipe).
    :param compression: "gzip" (default) or "zstd", for layers that
        arrive uncompressed; compressed layers are kept byte-exact.
    :param jobs: threads (default: the CPU count): each layer that
        arrives uncompressed is compressed with `jobs` threads; from a
        regular file, up to `jobs` layers (at most `MAX_LAYER_WORKERS`,
        see `MAX_COMPRESSION_THREADS`) are processed at once.
    :param sources: optional {diff_id Digest: repository} for layers the
        builder knows were pulled from a registry.
    :param progress: optional callable(phase, done_bytes, total_bytes)
        called as the archive is read: `phase` is "gather", `done_bytes`
        the archive bytes read so far (every MiB, inside large members
        too), `total_bytes` the archive's size or None (a pipe); the
        last call has the final count.  It may be called from gather's
        worker threads, never two calls at once: it must be quick.
    :param sha1: also compute the SHA-1 of each layer blob as it is
        written (`GatherResult.sha1s`), for a builder's file cache.
    :raises ArchiveError: with a one-line message; nothing is left at
        `outdir`.
    """
    started = time.monotonic()
    threads = jobs or os.cpu_count() or 1
    opened = None
    if isinstance(source, (str, os.PathLike)):
        try:
            opened = source = open(source, "rb", buffering=0)
        except OSError as e:
            raise CorruptArchive(f"cannot open {e.filename}: {e.strerror}")
    writer = None
    try:
        writer = LayoutWriter(outdir)
        store = BlobStore(writer.workdir, compression, threads, sha1=sha1)
        seekable = _regular_file(source)
        report = _Progress(progress, seekable and seekable[2])
        kind = None
        if seekable:
            fd, start, size = seekable
            kind = sniff(os.pread(fd, 1024, start))
        if kind == "tar":
            # Members are read where they lie, layers in parallel.
            # Each layer compressed gets all the threads (the last one
            # left running alone uses them), so memory grows with
            # workers x threads: both are bounded.
            workers = max(
                1,
                min(
                    threads,
                    MAX_LAYER_WORKERS,
                    MAX_COMPRESSION_THREADS // threads,
                ),
            )
            _read_file(FileReader(fd, start), store, workers, report)
            outer = None
            bytes_in = size
        else:
            _enlarge_pipe(source)
            counted = _CountingStream(source, report)
            head, stream = _read_head(counted)
            if not head:
                raise CorruptArchive("the archive is empty")
            outer, stream = open_outer(stream, head)
            for member in iter_members(stream):
                if member.kind == "file":
                    store.add(member)
                elif member.kind in ("symlink", "hardlink"):
                    store.add_link(member.name, member.target)
            finish_outer(stream)
            bytes_in = counted.count
        report.done(bytes_in)
        resolver = Resolver(store, sources)
        images = resolver.resolve()
        entries = []
        sha1s = {}
        for image in images:
            for layer in image.layers:
                if not layer.is_foreign:
                    writer.add_blob_file(
                        layer.blob.path, layer.descriptor.digest
                    )
                    if layer.blob.out_sha1 is not None:
                        digest = layer.descriptor.digest
                        sha1s[f"blobs/{digest.algorithm}/{digest.hex}"] = (
                            layer.blob.out_sha1
                        )
            entries.extend(writer.write_image(image))
        bytes_out = sum(os.path.getsize(p) for p in writer.written.values())
        _check_printable(images, resolver.dropped)
        writer.commit(entries)
    except OSError as e:
        if e.filename is None and e.errno in _WRITE_ERRNOS:
            # Written somewhere under the output directory: say so.
            where = writer.workdir if writer is not None else outdir
            raise OSError(e.errno, e.strerror, where) from None
        raise
    finally:
        # Removes the partial layout unless `commit` put it in place.
        if writer is not None:
            writer.abort()
        if opened is not None:
            opened.close()
    fmt = resolver.format if outer is None else f"{resolver.format}+{outer}"
    return GatherResult(
        format=fmt,
        images=images,
        index=tuple(entries),
        outdir=writer.outdir,
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        seconds=time.monotonic() - started,
        dropped=tuple(resolver.dropped),
        sha1s=sha1s,
    )
