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
    "finish_outer",
    "open_outer",
    "sniff",
]

import hashlib
import io
import lzma
import threading

import zstandard
from isal import igzip, igzip_threaded, isal_zlib

from lpbuildd.ociimage.errors import (
    CorruptArchive,
    UnsafeArchive,
    UnsupportedArchive,
)
from lpbuildd.ociimage.pipeline import Stage
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


# The outer xz decoder's memory limit: a block header may ask for a
# dictionary of up to 4 GiB.  `xz -8` needs 33 MiB, `xz -9` 65 MiB.
XZ_MEMORY_LIMIT = 40 * 1024 * 1024

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _is_skippable_frame(head):
    """zstd skippable frames (magic 0x184D2A5?), which Docker accepts."""
    return (
        len(head) >= 4
        and head[1:4] == b"\x2a\x4d\x18"
        and (head[0] & 0xF0 == 0x50)
    )


def _zstd_decompressor():
    return zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)


def sniff(head):
    """Name the format of a stream from its first bytes.

    :return: "gzip", "zstd", "xz", "bzip2", "tar" or None.
    """
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == ZSTD_MAGIC or _is_skippable_frame(head):
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

    def __init__(self, what, ratio=BOMB_RATIO, floor=BOMB_FLOOR, parent=None):
        self.what = what
        self.ratio = ratio
        self.floor = floor
        self.compressed = 0
        self.expanded = 0
        # A guard over several streams together, also charged here;
        # layers verified in parallel charge it from several threads.
        self.parent = parent
        self._lock = threading.Lock()

    def expand(self, n):
        """Count `n` more decompressed bytes; raise past the bounds."""
        with self._lock:
            self.expanded += n
        self.check()
        if self.parent is not None:
            self.parent.expand(n)

    def add_compressed(self, n):
        """Count `n` more compressed bytes (from any thread)."""
        with self._lock:
            self.compressed += n

    def check(self):
        if self.expanded > self.floor + self.ratio * self.compressed:
            raise UnsafeArchive(
                f"{self.what} expands more than {self.ratio}:1 "
                f"({self.compressed} bytes became over {self.expanded}): "
                f"refusing a likely decompression bomb"
            )


class _CountingReader(io.RawIOBase):
    """Count the compressed bytes read from the underlying stream."""

    def __init__(self, stream, guard, frames=None):
        self._stream = stream
        self._guard = guard
        self._frames = frames

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self._stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._guard.compressed += n
        if self._frames is not None:
            self._frames.update(data)
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
        except (
            EOFError,
            OSError,
            isal_zlib.error,  # igzip's IsalError, which is not an OSError
            lzma.LZMAError,
            zstandard.ZstdError,
        ) as e:
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
    what = "the archive's outer " + kind
    guard = ExpansionGuard(what)
    frames = ZstdFrames(f"{what} stream") if kind == "zstd" else None
    counted = io.BufferedReader(_CountingReader(stream, guard, frames), CHUNK)
    if kind == "gzip":
        # Not igzip_threaded: its worker thread reads 8 MiB ahead (which
        # the guard would count as consumed) and, if we stop reading
        # early, stays blocked on its queue.
        inner = igzip.IGzipFile(fileobj=counted, mode="rb")
    elif kind == "xz":
        inner = _XZReader(counted)
    else:
        inner = _zstd_decompressor().stream_reader(
            counted, read_across_frames=True, read_size=CHUNK
        )
    reader = _GuardedReader(inner, guard, f"corrupt outer {kind} stream")
    return kind, _OuterStream(reader, frames)


class _OuterStream(io.BufferedReader):
    """The decompressed archive; `finish` checks the stream's end."""

    def __init__(self, raw, frames):
        super().__init__(raw, CHUNK)
        self._frames = frames

    def finish(self):
        """Read to the end of the compressed stream (the tar has ended:
        the rest is padding, bounded by the bomb guard), so that its
        decoder checks the trailer (gzip CRC and size, xz index and
        footer, zstd frame end and checksum)."""
        while self.read(CHUNK):
            pass
        if self._frames is not None and not self._frames.complete:
            raise CorruptArchive(
                "corrupt outer zstd stream: truncated (it ends inside a "
                "frame)"
            )


def finish_outer(stream):
    """Check that an outer compressed stream ends properly, if any."""
    if isinstance(stream, _OuterStream):
        stream.finish()


class _XZReader(io.RawIOBase):
    """Decode concatenated xz streams with a bounded decoder memory.

    (`lzma.LZMAFile` cannot be given a memory limit.)
    """

    def __init__(self, stream):
        self._stream = stream
        self._decoder = self._new_decoder()

    @staticmethod
    def _new_decoder():
        return lzma.LZMADecompressor(
            format=lzma.FORMAT_XZ, memlimit=XZ_MEMORY_LIMIT
        )

    def readable(self):
        return True

    def readinto(self, buffer):
        size = len(buffer)
        while True:
            decoder = self._decoder
            if decoder.eof:
                # Another stream may follow, after zero padding.
                rest = decoder.unused_data.lstrip(b"\0")
                while not rest:
                    more = self._stream.read(CHUNK)
                    if not more:
                        return 0
                    rest = more.lstrip(b"\0")
                self._decoder = decoder = self._new_decoder()
                data = self._decode(rest, size)
            elif decoder.needs_input:
                chunk = self._stream.read(CHUNK)
                if not chunk:
                    raise EOFError(
                        "compressed stream ended before the end-of-stream "
                        "marker"
                    )
                data = self._decode(chunk, size)
            else:
                data = self._decode(b"", size)
            if data:
                buffer[: len(data)] = data
                return len(data)

    def _decode(self, data, size):
        try:
            return self._decoder.decompress(data, size)
        except lzma.LZMAError as e:
            if "limit" in str(e).lower():
                raise UnsafeArchive(
                    f"the archive's outer xz stream needs more than "
                    f"{XZ_MEMORY_LIMIT >> 20} MiB of memory to decode"
                )
            raise


class ZstdFrames:
    """Follow zstd frame boundaries, to tell a whole stream from a cut one.

    libzstd checks each frame's checksum when the frame ends, but a
    stream cut inside a frame just stops producing output.  This walks
    the frame and block headers (skipping their contents, so it costs a
    few operations per block) and says whether the stream ended exactly
    at the end of a frame.
    """

    def __init__(self, what):
        self.what = what
        self.frames = 0
        self._state = "magic"
        self._need = 4
        self._header = bytearray()
        self._skip = 0
        self._checksum = False

    def update(self, data):
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                take = min(self._skip, end - pos)
                self._skip -= take
                pos += take
                continue
            take = min(self._need - len(self._header), end - pos)
            self._header += data[pos : pos + take]
            pos += take
            if len(self._header) == self._need:
                header = bytes(self._header)
                self._header.clear()
                self._advance(header)

    def _expect(self, state, need):
        self._state = state
        self._need = need

    def _advance(self, header):
        state = self._state
        if state == "magic":
            if header == ZSTD_MAGIC:
                self._expect("frame header", 1)
            elif _is_skippable_frame(header):
                self._expect("skippable size", 4)
            else:
                raise CorruptArchive(
                    f"{self.what} is not valid zstd: no frame magic"
                )
        elif state == "skippable size":
            self._skip = int.from_bytes(header, "little")
            self._expect("magic", 4)
        elif state == "frame header":
            fhd = header[0]
            if fhd & 0x08:
                raise CorruptArchive(
                    f"{self.what} is not valid zstd: reserved bit set"
                )
            single_segment = fhd >> 5 & 1
            self._checksum = bool(fhd >> 2 & 1)
            fcs = (single_segment, 2, 4, 8)[fhd >> 6]
            rest = (0 if single_segment else 1) + (0, 1, 2, 4)[fhd & 3] + fcs
            if rest:
                self._expect("frame header rest", rest)
            else:
                self._expect("block", 3)
        elif state == "frame header rest":
            self._expect("block", 3)
        elif state == "block":
            value = int.from_bytes(header, "little")
            last, kind, size = value & 1, value >> 1 & 3, value >> 3
            if kind == 3:
                raise CorruptArchive(
                    f"{self.what} is not valid zstd: reserved block type"
                )
            self._skip = 1 if kind == 1 else size
            if not last:
                self._expect("block", 3)
            elif self._checksum:
                self._expect("checksum", 4)
            else:
                self.frames += 1
                self._expect("magic", 4)
        elif state == "checksum":
            self.frames += 1
            self._expect("magic", 4)

    @property
    def complete(self):
        """Did the stream end just after a whole frame?"""
        return (
            self._state == "magic"
            and not self._header
            and not self._skip
            and self.frames > 0
        )


class _HashSink:
    """A write-only sink that counts, checks a guard and hashes.

    With `threaded`, the hashing runs in its own `Stage`, so that a
    layer's inflating and the hashing of its output use two cores; the
    guard is still checked in the inflating thread, before the bytes
    go any further.
    """

    def __init__(self, guard, threaded=False):
        self.hash = hashlib.sha256()
        self.guard = guard
        self._stage = None
        if threaded:
            self._stage = Stage(self.hash.update, "diff_id sha256")

    def write(self, data):
        self.guard.expand(len(data))
        if self._stage is None:
            self.hash.update(data)
        else:
            self._stage.put(data)
        return len(data)

    def hexdigest(self):
        if self._stage is not None:
            self._stage.close()
        return self.hash.hexdigest()

    def abort(self):
        if self._stage is not None:
            try:
                self._stage.close()
            except BaseException:
                pass


class DiffIDHasher:
    """Push compressed layer bytes in; get the uncompressed digest out.

    Handles concatenated gzip members (eStargz, pigz) and zstd frames,
    and never holds more than a few chunks of decompressed output.
    With `threaded`, the decompressed bytes are hashed in a thread of
    their own (see `_HashSink`); `finish` or `abort` must then be called.
    """

    def __init__(self, kind, what, parent_guard=None, threaded=False):
        self.kind = kind
        self.what = what
        self.guard = ExpansionGuard(what, parent=parent_guard)
        self._sink = _HashSink(self.guard, threaded)
        if kind == "gzip":
            self._gz = isal_zlib.decompressobj(31)
            self._finished_member = False
        elif kind == "zstd":
            self._zstd = _zstd_decompressor().stream_writer(
                self._sink, write_size=CHUNK, write_return_read=True
            )
            self._frames = ZstdFrames(what)
        else:
            raise ValueError(kind)

    def update(self, data):
        self.guard.add_compressed(len(data))
        try:
            if self.kind == "zstd":
                self._frames.update(data)
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
        """Return the diff_id; raise if the stream ended early.

        gzip members end with their CRC and size, checked by zlib; zstd
        frames with their checksum where present, checked by libzstd,
        and `ZstdFrames` checks that the stream ends with a frame.
        """
        try:
            if self.kind == "zstd":
                self._zstd.flush()
                if not self._frames.complete:
                    raise CorruptArchive(
                        f"{self.what}: truncated zstd stream (it ends "
                        f"inside a frame)"
                    )
            elif not self._gz.eof:
                raise CorruptArchive(f"{self.what}: truncated gzip stream")
        except (isal_zlib.error, zstandard.ZstdError) as e:
            self.abort()
            raise CorruptArchive(f"{self.what} is not valid {self.kind}: {e}")
        except BaseException:
            self.abort()
            raise
        return Digest("sha256", self._sink.hexdigest())

    def abort(self):
        """Stop the hashing thread, if any; the digest is lost."""
        self._sink.abort()


class _DigestingWriter:
    """Write-through to a file, hashing and counting the bytes.

    With ``sha1``, the bytes are also SHA-1-hashed (`sha1`), for a
    builder's file cache, which names files by their SHA-1.
    """

    def __init__(self, fileobj, sha1=False):
        self._fileobj = fileobj
        self.hash = hashlib.sha256()
        self.sha1 = hashlib.sha1() if sha1 else None
        self.size = 0

    def write(self, data):
        self.hash.update(data)
        if self.sha1 is not None:
            self.sha1.update(data)
        self.size += len(data)
        try:
            return self._fileobj.write(data)
        except OSError as e:
            name = getattr(self._fileobj, "name", None)
            if e.filename is None and isinstance(name, str):
                # A full disk must say where.
                raise OSError(e.errno, e.strerror, name) from None
            raise

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
    compressed (digest, size).  With ``sha1``, `out_sha1` is then the
    compressed bytes' SHA-1 (hex), computed as they are written.
    """

    def __init__(self, fileobj, compression="gzip", threads=1, sha1=False):
        self.compression = compression
        self._out = _DigestingWriter(fileobj, sha1=sha1)
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

    @property
    def out_sha1(self):
        """The SHA-1 of the compressed bytes (after `finish`), or None."""
        if self._out.sha1 is None:
            return None
        return self._out.sha1.hexdigest()

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
