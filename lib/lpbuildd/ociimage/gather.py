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

import fcntl
import io
import os
import stat
import time
from dataclasses import dataclass

from lpbuildd.ociimage.blobstore import BlobStore
from lpbuildd.ociimage.compression import CHUNK, finish_outer, open_outer
from lpbuildd.ociimage.errors import CorruptArchive
from lpbuildd.ociimage.layout import LayoutWriter
from lpbuildd.ociimage.resolver import Resolver
from lpbuildd.ociimage.tarstream import iter_members


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

    @property
    def layer_count(self):
        return sum(len(image.layers) for image in self.images)


class _CountingStream(io.RawIOBase):
    def __init__(self, stream):
        self._stream = stream
        self.count = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = self._stream.readinto(buffer)
        self.count += n or 0
        return n


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
):
    """Read an image archive and write an OCI upload at `outdir`.

    :param source: a path, or a binary file object (e.g. a pipe).
    :param compression: "gzip" (default) or "zstd", for layers that
        arrive uncompressed; compressed layers are kept byte-exact.
    :param jobs: compression threads (default: the CPU count).
    :param sources: optional {diff_id Digest: repository} for layers the
        builder knows were pulled from a registry.
    :param progress: optional callable(bytes_read) called as data flows.
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
        store = BlobStore(writer.workdir, compression, threads)
        _enlarge_pipe(source)
        counted = _CountingStream(source)
        head, stream = _read_head(counted)
        if not head:
            raise CorruptArchive("the archive is empty")
        outer, stream = open_outer(stream, head)
        for member in iter_members(stream):
            if member.kind == "file":
                store.add(member)
                if progress is not None:
                    progress(counted.count)
            elif member.kind in ("symlink", "hardlink"):
                store.add_link(member.name, member.target)
        finish_outer(stream)
        resolver = Resolver(store, sources)
        images = resolver.resolve()
        entries = []
        for image in images:
            for layer in image.layers:
                if not layer.is_foreign:
                    writer.add_blob_file(
                        layer.blob.path, layer.descriptor.digest
                    )
            entries.extend(writer.write_image(image))
        bytes_out = sum(os.path.getsize(p) for p in writer.written.values())
        _check_printable(images, resolver.dropped)
        writer.commit(entries)
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
        bytes_in=counted.count,
        bytes_out=bytes_out,
        seconds=time.monotonic() - started,
        dropped=tuple(resolver.dropped),
    )
