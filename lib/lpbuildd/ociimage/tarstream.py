# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Walk a tar stream once, forward only, treating it as hostile.

Member names and link targets are normalised and must stay inside the
archive; nothing is ever extracted, so names are only keys.  The stream
may be a pipe: `ForwardReader` gives `tarfile` the `tell`/`seek` it
wants while only ever moving forward.
"""

__all__ = [
    "ForwardReader",
    "Member",
    "iter_members",
    "normalise_name",
    "resolve_link",
]

import io
import posixpath
import tarfile
from dataclasses import dataclass

from lpbuildd.ociimage.errors import (
    CorruptArchive,
    UnsafeArchive,
    UnsupportedArchive,
)

# More members than this is not an image archive but an attack on our
# bookkeeping.
MAX_MEMBERS = 200000
MAX_NAME_LENGTH = 4096


class ForwardReader(io.RawIOBase):
    """A readable stream that can only seek forward (by skipping)."""

    def __init__(self, stream):
        self._stream = stream
        self._position = 0
        self.last_read = b""

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._position

    def read(self, n=-1):
        data = self._stream.read(n)
        self._position += len(data)
        self.last_read = data[-512:] if n == 512 else b""
        return data

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, position, whence=io.SEEK_SET):
        if whence == io.SEEK_CUR:
            position += self._position
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("cannot seek from the end")
        if position < self._position:
            raise CorruptArchive(
                "tar archive asks to go backwards in a forward-only stream"
            )
        while position > self._position:
            chunk = self._stream.read(min(position - self._position, 1 << 20))
            if not chunk:
                raise CorruptArchive("truncated tar archive")
            self._position += len(chunk)
        return self._position


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


def iter_members(stream):
    """Yield a `Member` for every tar entry, in archive order.

    The caller must consume a file member's data (`read_chunks`) before
    asking for the next member, or it is skipped.
    """
    reader = ForwardReader(stream)
    try:
        tar = tarfile.open(fileobj=reader, mode="r:")
    except tarfile.ReadError as e:
        raise CorruptArchive(f"not a tar archive ({e})")
    count = 0
    try:
        while True:
            info = tar.next()
            if info is None:
                break
            count += 1
            if count > MAX_MEMBERS:
                raise UnsafeArchive(
                    f"archive has more than {MAX_MEMBERS} members"
                )
            # Forget members: we keep our own (smaller) records.
            tar.members.clear()
            name = normalise_name(info.name)
            if info.isreg():
                if info.issparse():
                    raise UnsupportedArchive(
                        f"sparse archive member {name!r} is not supported"
                    )
                reader.seek(info.offset_data)
                yield Member(name, "file", info.size, reader=reader)
            elif info.issym():
                yield Member(
                    name,
                    "symlink",
                    target=resolve_link(name, info.linkname, False),
                )
            elif info.islnk():
                yield Member(
                    name,
                    "hardlink",
                    target=resolve_link(name, info.linkname, True),
                )
            elif info.isdir():
                yield Member(name, "dir")
            else:
                yield Member(name, "other")
    except tarfile.TarError as e:
        raise CorruptArchive(f"corrupt tar archive: {e}")
    except EOFError:
        raise CorruptArchive("truncated archive")
    # tarfile treats a truncated or garbled header after the first as
    # the end of the archive; insist on a real end-of-archive block.
    if reader.last_read != bytes(512):
        raise CorruptArchive(
            "truncated archive: no end-of-archive marker after "
            f"{reader.tell()} bytes"
        )
