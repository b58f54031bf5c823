# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Walk a tar stream once, forward only, treating it as hostile.

Member names and link targets are normalised and must stay inside the
archive; nothing is ever extracted, so names are only keys.  The stream
may be a pipe: `ForwardReader` only ever moves forward.  Headers are
parsed here rather than by `tarfile`, whose errors on malformed PAX
records, sparse maps or negative sizes are not all `TarError`s.
"""

__all__ = [
    "FileReader",
    "ForwardReader",
    "Member",
    "iter_members",
    "normalise_name",
    "resolve_link",
]

import io
import os
import posixpath
import re
from dataclasses import dataclass

from lpbuildd.ociimage.errors import (
    CorruptArchive,
    UnsafeArchive,
    UnsupportedArchive,
)
from lpbuildd.ociimage.pipeline import Cancelled

# More members than this is not an image archive but an attack on our
# bookkeeping.
MAX_MEMBERS = 200000
MAX_NAME_LENGTH = 4096
# Each extended header record (PAX header, GNU long name or link) is at
# most this long, as Go's archive/tar allows.
MAX_HEADER_RECORD = 1 << 20
# Sizes beyond this (8 PiB) are garbage, whatever the field can encode.
MAX_MEMBER_SIZE = 1 << 53
BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_OCTAL = re.compile(rb"[0-7]*")
# Types whose size field says nothing about data that follows (as Go's
# reader has it): links, devices, directories, FIFOs.
_HEADER_ONLY = (b"1", b"2", b"3", b"4", b"5", b"6")


class ForwardReader(io.RawIOBase):
    """A readable stream that can only seek forward (by skipping)."""

    def __init__(self, stream):
        self._stream = stream
        self._position = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._position

    def read(self, n=-1):
        data = self._stream.read(n)
        self._position += len(data)
        return data

    def read_exact(self, n):
        """Read `n` bytes, fewer only at the end of the stream."""
        parts = []
        while n > 0:
            data = self.read(min(n, 1 << 20))
            if not data:
                break
            parts.append(data)
            n -= len(data)
        return b"".join(parts)

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _forward_target(self, position, whence):
        """The absolute position a seek asks for, if it is not backwards."""
        if whence == io.SEEK_CUR:
            position += self._position
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("cannot seek from the end")
        if position < self._position:
            raise CorruptArchive(
                "tar archive asks to go backwards in a forward-only stream"
            )
        return position

    def seek(self, position, whence=io.SEEK_SET):
        position = self._forward_target(position, whence)
        while position > self._position:
            chunk = self._stream.read(min(position - self._position, 1 << 20))
            if not chunk:
                raise CorruptArchive("truncated tar archive")
            self._position += len(chunk)
        return self._position


class FileReader(ForwardReader):
    """A forward reader over a regular file that seeks instead of reading.

    Reads are `os.pread` calls at an offset that only moves forward, so
    skipping a member's data costs nothing and several threads may read
    other parts of the file (`RangeReader`) meanwhile.  `size` is the
    file's size when opened, so that a member running past the end is
    reported as the stream reader would report it.
    """

    def __init__(self, fd, start=0):
        self._fd = fd
        self._start = start
        self._position = 0
        self.size = os.fstat(fd).st_size - start

    def read(self, n=-1):
        if n is None or n < 0:
            n = max(0, self.size - self._position)
        data = os.pread(self._fd, n, self._start + self._position)
        self._position += len(data)
        return data

    def seek(self, position, whence=io.SEEK_SET):
        position = self._forward_target(position, whence)
        if position > self.size:
            raise CorruptArchive("truncated tar archive")
        self._position = position
        return position

    def range(self, offset, size):
        """A `RangeReader` over `size` bytes at `offset` (a member's)."""
        return RangeReader(self._fd, self._start + offset, size)


class RangeReader:
    """Sequential `os.pread`s over one range of a file, for one thread.

    :param count: optional callable(n) told of every read, from the
        reading thread.
    """

    def __init__(self, fd, offset, size, count=None):
        self._fd = fd
        self._offset = offset
        self._remaining = size
        self.count = count
        # Set (from any thread) to stop the reader at its next read.
        self.cancelled = None

    def read(self, n=-1):
        if self.cancelled is not None and self.cancelled.is_set():
            raise Cancelled()
        if n is None or n < 0 or n > self._remaining:
            n = self._remaining
        data = os.pread(self._fd, n, self._offset)
        self._offset += len(data)
        self._remaining -= len(data)
        if self.count is not None:
            self.count(len(data))
        return data


def normalise_name(name, what="archive member name"):
    """Normalise a path inside the archive; refuse escapes.

    :return: the normalised relative name ("" for the archive root).
    """
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        raise UnsafeArchive(f"{what} is not a reasonable path")
    if "\0" in name:
        raise UnsafeArchive(f"{what} {name[:80]!r} contains a NUL byte")
    if name.startswith("/"):
        raise UnsafeArchive(f"{what} {name[:200]!r} is an absolute path")
    normalised = posixpath.normpath(name)
    if normalised == ".":
        return ""
    if normalised == ".." or normalised.startswith("../"):
        raise UnsafeArchive(f"{what} {name[:200]!r} escapes the archive")
    return normalised


def resolve_link(member_name, target, hard):
    """The archive name a link member points at."""
    what = f"link {member_name!r} -> {target[:200]!r}"
    if target.startswith("/"):
        raise UnsafeArchive(f"{what} points outside the archive")
    if hard:
        joined = target
    else:
        joined = posixpath.join(posixpath.dirname(member_name), target)
    try:
        return normalise_name(joined, "link target")
    except UnsafeArchive:
        raise UnsafeArchive(f"{what} points outside the archive")


@dataclass
class Member:
    """One interesting tar member."""

    name: str
    kind: str  # "file", "dir", "symlink", "hardlink", "other"
    size: int = 0
    target: str = None  # for links: the normalised archive name
    reader: "ForwardReader" = None
    offset: int = None  # of a file member's data in the (tar) stream

    def read_chunks(self, chunk_size=1 << 20):
        """Yield the member's data; raise if the archive ends early."""
        remaining = self.size
        while remaining:
            data = self.reader.read(min(chunk_size, remaining))
            if not data:
                raise CorruptArchive(
                    f"truncated archive: {self.name!r} ends "
                    f"{remaining} bytes early"
                )
            remaining -= len(data)
            yield data


def _cstring(field):
    """The bytes of a NUL-terminated header field."""
    end = field.find(b"\0")
    return field if end < 0 else field[:end]


def _text(data, what, offset):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptArchive(
            f"corrupt tar archive: {what} of the header at offset {offset} "
            f"is not UTF-8"
        )


def _name(data):
    """A member name or link target, as bytes it may hold.

    Tar names are bytes: one that is not UTF-8 is kept with
    ``surrogateescape``, so that its member is junk like any other
    (JSON names hold no lone surrogates, so no image can refer to it).
    """
    return data.decode("utf-8", "surrogateescape")


def _number(field, what, offset):
    """A numeric header field: octal, or base-256 (GNU); never negative."""
    if field[:1] and field[0] & 0x80:
        if field[0] == 0xFF:
            raise CorruptArchive(
                f"corrupt tar archive: negative {what} in the header at "
                f"offset {offset}"
            )
        value = int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    else:
        digits = _cstring(field).strip(b" ")
        if not _OCTAL.fullmatch(digits):
            raise CorruptArchive(
                f"corrupt tar archive: invalid {what} {field[:12]!r} in the "
                f"header at offset {offset}"
            )
        value = int(digits or b"0", 8)
    if value > MAX_MEMBER_SIZE:
        raise CorruptArchive(
            f"corrupt tar archive: {what} {value} in the header at offset "
            f"{offset} is out of range"
        )
    return value


def _checksum_ok(block, offset):
    stored = _number(block[148:156], "header checksum", offset)
    unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    if stored == unsigned:
        return True
    signed = unsigned - sum(b for b in block[:148] if b > 0x7F) * 2
    signed -= sum(b for b in block[156:] if b > 0x7F) * 2
    return stored == signed


def _parse_pax(data, offset):
    """The records of a PAX extended header, as {key: bytes value}.

    Each record is "<length> <key>=<value>\n", where the decimal
    length counts the whole record.
    """
    records = {}
    pos = 0
    what = f"corrupt tar archive: malformed PAX header at offset {offset}"
    while pos < len(data):
        space = data.find(b" ", pos, pos + 21)
        if space < 0:
            raise CorruptArchive(what)
        digits = data[pos:space]
        if not digits.isdigit() or digits.startswith(b"0"):
            raise CorruptArchive(what)
        length = int(digits)
        end = pos + length
        if length <= len(digits) + 1 or end > len(data):
            raise CorruptArchive(what)
        if data[end - 1 : end] != b"\n":
            raise CorruptArchive(what)
        key, equals, value = data[space + 1 : end - 1].partition(b"=")
        if not equals or not key or b"\0" in key:
            raise CorruptArchive(what)
        records[_text(key, "a PAX key", offset)] = value
        pos = end
    return records


class _Header:
    """One 512-byte header block, checked and decoded."""

    def __init__(self, block, offset):
        self.offset = offset
        self.type = block[156:157]
        self.size = _number(block[124:136], "size", offset)
        name = _cstring(block[0:100])
        if block[257:263] == b"ustar\0":
            # POSIX ustar: a prefix for long names (GNU uses these bytes
            # for other things and says "ustar  \0").
            prefix = _cstring(block[345:500])
            if prefix:
                name = prefix + b"/" + name
        self.name = _name(name)
        self.linkname = _name(_cstring(block[157:257]))


class _Pending:
    """Extended header records that apply to the next member."""

    def __init__(self):
        self.clear()

    def clear(self):
        self.pax = {}
        self.long_name = None
        self.long_link = None
        self.present = False


def _record(reader, header, what):
    """The data of an extended header member (PAX, GNU long name)."""
    if header.size > MAX_HEADER_RECORD:
        raise UnsafeArchive(
            f"{what} at offset {header.offset} has {header.size} bytes "
            f"(the limit is {MAX_HEADER_RECORD})"
        )
    data = reader.read_exact(header.size)
    if len(data) != header.size:
        raise CorruptArchive(
            f"truncated archive: {what} at offset {header.offset} is cut "
            f"short"
        )
    reader.seek(_padded(reader.tell()))
    return data


def _padded(position):
    return -(-position // BLOCK) * BLOCK


def _apply_pax(pending, records, offset):
    for key, value in records.items():
        if key.startswith("GNU.sparse."):
            raise UnsupportedArchive(
                f"sparse archive member (PAX header at offset {offset}) "
                f"is not supported"
            )
        if key in ("path", "linkpath"):
            if value:
                pending.pax[key] = _name(value)
            else:
                pending.pax.pop(key, None)
        elif key == "size":
            if not value.isdigit() or len(value) > 19:
                raise CorruptArchive(
                    f"corrupt tar archive: invalid PAX size {value[:20]!r} "
                    f"at offset {offset}"
                )
            size = int(value)
            if size > MAX_MEMBER_SIZE:
                raise CorruptArchive(
                    f"corrupt tar archive: PAX size {size} at offset "
                    f"{offset} is out of range"
                )
            pending.pax["size"] = size


def iter_members(stream):
    """Yield a `Member` for every tar entry, in archive order.

    Headers are parsed here, not by `tarfile`: ustar, PAX (`path`,
    `linkpath`, `size`) and GNU long names and links are understood;
    sparse members are refused; every field is checked, sizes are never
    negative and each extended header record is at most
    `MAX_HEADER_RECORD` bytes.  Any malformed header is one
    `ArchiveError`.

    The caller must consume a file member's data (`read_chunks`) before
    asking for the next member, or it is skipped.
    """
    if isinstance(stream, ForwardReader):
        reader = stream
    else:
        reader = ForwardReader(stream)
    known_size = getattr(reader, "size", None)
    count = 0
    pending = _Pending()
    next_header = 0
    while True:
        reader.seek(next_header)
        offset = reader.tell()
        block = reader.read_exact(BLOCK)
        if len(block) < BLOCK:
            if offset == 0:
                raise CorruptArchive(
                    f"truncated archive: {len(block)} bytes is not even a "
                    f"tar header"
                    if block
                    else "not a tar archive (empty)"
                )
            raise CorruptArchive(
                "truncated archive: no end-of-archive marker after "
                f"{offset} bytes"
            )
        if block == _ZERO_BLOCK:
            if offset == 0:
                raise CorruptArchive("not a tar archive (empty tar)")
            if pending.present:
                raise CorruptArchive(
                    "corrupt tar archive: an extended header is followed "
                    "by the end of the archive"
                )
            rest = reader.read_exact(BLOCK)
            if rest.strip(b"\0"):
                raise CorruptArchive(
                    f"corrupt tar archive: garbage after the end-of-archive "
                    f"block at offset {offset}"
                )
            return
        try:
            valid = _checksum_ok(block, offset)
        except CorruptArchive:
            valid = False
        if not valid:
            if offset == 0:
                raise CorruptArchive("not a tar archive (bad header checksum)")
            raise CorruptArchive(
                f"corrupt tar archive: bad header checksum at offset {offset}"
            )
        header = _Header(block, offset)
        kind = header.type
        if kind in (b"x", b"g", b"L", b"K"):
            what = {
                b"x": "PAX header",
                b"g": "PAX global header",
                b"L": "GNU long name",
                b"K": "GNU long link",
            }[kind]
            data = _record(reader, header, what)
            next_header = reader.tell()
            if kind == b"g":
                # Validated, then ignored: a global header says nothing
                # an image archive needs.
                _parse_pax(data, offset)
                continue
            pending.present = True
            if kind == b"x":
                _apply_pax(pending, _parse_pax(data, offset), offset)
            elif kind == b"L":
                pending.long_name = _name(_cstring(data))
            else:
                pending.long_link = _name(_cstring(data))
            continue
        if kind == b"S":
            raise UnsupportedArchive(
                f"sparse archive member {header.name[:200]!r} is not "
                f"supported"
            )
        count += 1
        if count > MAX_MEMBERS:
            raise UnsafeArchive(f"archive has more than {MAX_MEMBERS} members")
        raw_name = pending.pax.get("path") or pending.long_name or header.name
        linkname = (
            pending.pax.get("linkpath") or pending.long_link or header.linkname
        )
        size = pending.pax.get("size", header.size)
        pending.clear()
        data_start = reader.tell()
        if kind in _HEADER_ONLY:
            size = 0
        next_header = _padded(data_start + size)
        name = normalise_name(raw_name)
        if kind in (b"0", b"\0", b"7"):
            if kind == b"\0" and raw_name.endswith("/"):
                # Pre-POSIX tars mark directories by the trailing slash.
                yield Member(name, "dir")
            else:
                if known_size is not None and data_start + size > known_size:
                    raise CorruptArchive(
                        f"truncated archive: {name!r} ends "
                        f"{data_start + size - known_size} bytes early"
                    )
                yield Member(
                    name, "file", size, reader=reader, offset=data_start
                )
        elif kind == b"2":
            yield Member(
                name, "symlink", target=resolve_link(name, linkname, False)
            )
        elif kind == b"1":
            yield Member(
                name, "hardlink", target=resolve_link(name, linkname, True)
            )
        elif kind == b"5":
            yield Member(name, "dir")
        else:
            yield Member(name, "other")
