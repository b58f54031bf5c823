# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Compression: sniffing, deterministic layer compression, bounded
decompression.

Layer compression must be deterministic (same bytes in, same bytes out)
so that a rebuilt layer gets the digest it had before and Launchpad can
reuse it.  ISA-L's threaded gzip writer is used: it writes no mtime and
no file name, and its output depends only on the block size, not on the
number of threads (checked by the tests).  zstd is available on request;
multi-threaded zstd output likewise does not depend on the thread count.
"""

__all__ = [
    "BOMB_FLOOR",
    "BOMB_RATIO",
    "DiffIDHasher",
    "ExpansionGuard",
    "LayerCompressor",
    "open_outer",
    "sniff",
]

import hashlib
import io
import lzma

import zstandard
from isal import igzip, igzip_threaded, isal_zlib

from lpbuildd.ociimage.errors import (
    CorruptArchive,
    UnsafeArchive,
    UnsupportedArchive,
)
from ocitypes.digest import Digest

CHUNK = 1024 * 1024
GZIP_LEVEL = 1
GZIP_BLOCK_SIZE = 1024 * 1024
ZSTD_LEVEL = 3

# Decompression bomb bounds: a decompressed stream may grow to
# BOMB_RATIO times its compressed size, plus BOMB_FLOOR.  Real layers
# rarely exceed 20:1; deflate's maximum is about 1032:1.  The ratio must
# stay well below that maximum: a bomb only trips the guard once its
# excess over the ratio has used up the floor, i.e. after about
# BOMB_FLOOR * 1032 / (1032 - BOMB_RATIO) bytes (1.24 GiB here, about a
# second of work; 2 GiB per 64 MiB of floor with a ratio of 1000).  The
# floor is generous so that a layer holding a long run of zeros (a
# non-sparse copy of a sparse file such as /var/log/lastlog, which
# compresses about 1000:1) still passes up to about 1.2 GiB.
BOMB_RATIO = 200
BOMB_FLOOR = 1024 * 1024 * 1024


# A zstd frame declares the window its decoder must hold in memory, up
# to 2 GiB with --long.  Registries' and builders' layers use the
# default levels (windows of 8 MiB at most); anything needing more than
# this is refused rather than allowed to set our memory use.
ZSTD_MAX_WINDOW = 32 * 1024 * 1024


def _zstd_decompressor():
    return zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)


def sniff(head):
    """Name the format of a stream from its first bytes.

    :return: "gzip", "zstd", "xz", "bzip2", "tar" or None.
    """
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:3] == b"BZh":
        return "bzip2"
    if len(head) >= 512 and (
        head[257:262] == b"ustar" or head[:512] == bytes(512)
    ):
        return "tar"
    return None


class ExpansionGuard:
    """Refuse a decompressed stream that grows beyond the bomb bounds."""

    def __init__(self, what, ratio=BOMB_RATIO, floor=BOMB_FLOOR):
        self.what = what
        self.ratio = ratio
        self.floor = floor
        self.compressed = 0
        self.expanded = 0

    def check(self):
        if self.expanded > self.floor + self.ratio * self.compressed:
            raise UnsafeArchive(
                f"{self.what} expands more than {self.ratio}:1 "
                f"({self.compressed} bytes became over {self.expanded}): "
                f"refusing a likely decompression bomb"
            )


class _CountingReader(io.RawIOBase):
    """Count the compressed bytes read from the underlying stream."""

    def __init__(self, stream, guard):
        self._stream = stream
        self._guard = guard

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self._stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._guard.compressed += n
        return n


class _GuardedReader(io.RawIOBase):
    """A decompressed stream that checks the guard as it is read."""

    def __init__(self, stream, guard, error):
        self._stream = stream
        self._guard = guard
        self._error = error

    def readable(self):
        return True

    def readinto(self, buffer):
        try:
            data = self._stream.read(len(buffer))
        except (EOFError, OSError, lzma.LZMAError, zstandard.ZstdError) as e:
            raise CorruptArchive(f"{self._error}: {e}")
        n = len(data)
        if not n and not self._guard.expanded:
            # zstd does not report a cut frame: it just gives nothing.
            raise CorruptArchive(
                f"{self._error}: it decompresses to nothing (truncated?)"
            )
        buffer[:n] = data
        self._guard.expanded += n
        self._guard.check()
        return n


def open_outer(stream, head):
    """Undo an outer gzip/xz/zstd compression of a whole archive.

    :param stream: the raw stream, positioned after nothing (the caller
        has only peeked `head`).
    :return: (compression name or None, readable stream of the tar).
    """
    kind = sniff(head)
    if kind not in ("gzip", "xz", "zstd"):
        if kind == "bzip2":
            raise UnsupportedArchive("bzip2 compression is not supported")
        return None, stream
    guard = ExpansionGuard("the archive's outer " + kind)
    counted = io.BufferedReader(_CountingReader(stream, guard), CHUNK)
    if kind == "gzip":
        # Not igzip_threaded: its worker thread reads 8 MiB ahead (which
        # the guard would count as consumed) and, if we stop reading
        # early, stays blocked on its queue.
        inner = igzip.IGzipFile(fileobj=counted, mode="rb")
    elif kind == "xz":
        inner = lzma.LZMAFile(counted)
    else:
        inner = _zstd_decompressor().stream_reader(
            counted, read_across_frames=True, read_size=CHUNK
        )
    reader = _GuardedReader(inner, guard, f"corrupt outer {kind} stream")
    return kind, io.BufferedReader(reader, CHUNK)


class _HashSink:
    """A write-only sink that hashes, counts and checks a guard."""

    def __init__(self, guard):
        self.hash = hashlib.sha256()
        self.guard = guard

    def write(self, data):
        self.hash.update(data)
        self.guard.expanded += len(data)
        self.guard.check()
        return len(data)


class DiffIDHasher:
    """Push compressed layer bytes in; get the uncompressed digest out.

    Handles concatenated gzip members (eStargz, pigz) and zstd frames,
    and never holds more than one chunk of decompressed output.
    """

    def __init__(self, kind, what):
        self.kind = kind
        self.what = what
        self.guard = ExpansionGuard(what)
        self._sink = _HashSink(self.guard)
        if kind == "gzip":
            self._gz = isal_zlib.decompressobj(31)
            self._finished_member = False
        elif kind == "zstd":
            self._zstd = _zstd_decompressor().stream_writer(
                self._sink, write_size=CHUNK, write_return_read=True
            )
        else:
            raise ValueError(kind)

    def update(self, data):
        self.guard.compressed += len(data)
        try:
            if self.kind == "zstd":
                self._zstd.write(data)
            else:
                self._feed_gzip(data)
        except (isal_zlib.error, zstandard.ZstdError) as e:
            raise CorruptArchive(f"{self.what} is not valid {self.kind}: {e}")

    def _feed_gzip(self, data):
        while data:
            if self._gz.eof:
                # Zero padding after the last member is common; anything
                # else starts another member.
                if not data.strip(b"\0"):
                    return
                self._gz = isal_zlib.decompressobj(31)
            self._sink.write(self._gz.decompress(data, CHUNK))
            if self._gz.eof:
                data = self._gz.unused_data
            else:
                data = self._gz.unconsumed_tail

    def finish(self):
        """Return the diff_id; raise if a gzip stream ended early.

        A truncated zstd frame cannot be told from here; it surfaces as
        a digest or diff_id mismatch instead.
        """
        try:
            if self.kind == "zstd":
                self._zstd.flush()
            elif not self._gz.eof:
                raise CorruptArchive(f"{self.what}: truncated gzip stream")
        except (isal_zlib.error, zstandard.ZstdError) as e:
            raise CorruptArchive(f"{self.what} is not valid {self.kind}: {e}")
        return Digest("sha256", self._sink.hash.hexdigest())


class _DigestingWriter:
    """Write-through to a file, hashing and counting the bytes."""

    def __init__(self, fileobj):
        self._fileobj = fileobj
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.hash.update(data)
        self.size += len(data)
        return self._fileobj.write(data)

    def flush(self):
        self._fileobj.flush()

    def writable(self):
        return True

    @property
    def closed(self):
        return False

    def close(self):
        pass


class LayerCompressor:
    """Compress a layer deterministically into a file, hashing the output.

    Write the uncompressed bytes with `write`, then `finish` returns the
    compressed (digest, size).
    """

    def __init__(self, fileobj, compression="gzip", threads=1):
        self.compression = compression
        self._out = _DigestingWriter(fileobj)
        if compression == "gzip":
            self._writer = igzip_threaded.open(
                self._out,
                "wb",
                compresslevel=GZIP_LEVEL,
                threads=max(1, threads),
                block_size=GZIP_BLOCK_SIZE,
            )
        elif compression == "zstd":
            params = zstandard.ZstdCompressionParameters.from_level(
                ZSTD_LEVEL, threads=max(1, threads), write_checksum=0
            )
            self._writer = zstandard.ZstdCompressor(
                compression_params=params
            ).stream_writer(self._out, closefd=False)
        else:
            raise ValueError(f"unknown compression {compression!r}")

    def write(self, data):
        self._writer.write(data)

    def finish(self):
        try:
            self._writer.close()
        except BaseException:
            self.abort()
            raise
        return Digest("sha256", self._out.hash.hexdigest()), self._out.size

    def abort(self):
        """Stop and join every worker thread; the output is garbage.

        Safe to call at any time, more than once, and after `finish`.
        """
        # Closing igzip's threaded writer waits for its queues, whose
        # workers record their own errors, then stops and joins them.
        try:
            self._writer.close()
        except Exception:
            pass
