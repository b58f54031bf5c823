# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Content-addressed file storage in a local directory.

Content with sha256 ``h`` lives at ``<root>/<h[:2]>/<h>``.  Writes copy
the input in 1 MiB chunks to a temporary file under ``<root>/incoming``,
fsync it, check it against what the caller expected, and only then
rename it into place, so a reader never sees a partial file and a
failed write leaves nothing behind.
"""

__all__ = [
    "CHUNK_SIZE",
    "LibrarianStorage",
    "StoredContent",
    "configure_librarian",
    "get_librarian_storage",
]

import hashlib
import os
import re
import tempfile
from typing import NamedTuple

from zope.component import getUtility, provideUtility
from zope.interface import implementer

from lp.services.librarian.interfaces import ContentMismatch, ILibrarianStorage

CHUNK_SIZE = 1024 * 1024
_SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")


class StoredContent(NamedTuple):
    sha256: str
    sha1: str
    md5: str
    size: int


def _fsync_directory(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@implementer(ILibrarianStorage)
class LibrarianStorage:
    """See `ILibrarianStorage`."""

    def __init__(self, root, download_url=None):
        self.root = os.path.abspath(root)
        self.download_url = download_url
        self.incoming = os.path.join(self.root, "incoming")
        os.makedirs(self.incoming, exist_ok=True)

    def getPath(self, sha256):
        """See `ILibrarianStorage`."""
        if not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
            raise ValueError(f"Not a hex sha256: {sha256!r}")
        return os.path.join(self.root, sha256[:2], sha256)

    def exists(self, sha256):
        """See `ILibrarianStorage`."""
        return os.path.isfile(self.getPath(sha256))

    def open(self, sha256):
        """See `ILibrarianStorage`."""
        return open(self.getPath(sha256), "rb")

    def remove(self, sha256):
        """See `ILibrarianStorage`."""
        try:
            os.unlink(self.getPath(sha256))
        except FileNotFoundError:
            pass

    def _copy(self, file, out, expected_size):
        hashes = (hashlib.sha256(), hashlib.sha1(), hashlib.md5())
        size = 0
        while True:
            chunk = file.read(CHUNK_SIZE)
            if not chunk:
                break
            if not isinstance(chunk, bytes):
                raise TypeError("The librarian stores bytes, not text")
            size += len(chunk)
            if expected_size is not None and size > expected_size:
                raise ContentMismatch(
                    f"Content is longer than the expected {expected_size} "
                    "bytes"
                )
            for hash in hashes:
                hash.update(chunk)
            out.write(chunk)
        return StoredContent(*(hash.hexdigest() for hash in hashes), size)

    def store(self, file, expected_sha256=None, expected_size=None):
        """See `ILibrarianStorage`."""
        if expected_sha256 is not None:
            # Fail before reading anything if the expectation is garbage.
            self.getPath(expected_sha256)
        fd, temp_path = tempfile.mkstemp(dir=self.incoming, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                stored = self._copy(file, out, expected_size)
                out.flush()
                os.fsync(out.fileno())
            if expected_size is not None and stored.size != expected_size:
                raise ContentMismatch(
                    f"Content is {stored.size} bytes, expected "
                    f"{expected_size}"
                )
            if (
                expected_sha256 is not None
                and stored.sha256 != expected_sha256
            ):
                raise ContentMismatch(
                    f"Content has sha256 {stored.sha256}, expected "
                    f"{expected_sha256}"
                )
            final_path = self.getPath(stored.sha256)
            directory = os.path.dirname(final_path)
            os.makedirs(directory, exist_ok=True)
            # Identical content may already be there; replacing it with
            # the same bytes is harmless and keeps this free of races.
            os.replace(temp_path, final_path)
            _fsync_directory(directory)
        except BaseException:
            try:
                os.unlink(temp_path)
            except FileNotFoundError:
                pass
            raise
        return stored


def configure_librarian(root, download_url=None):
    """Store librarian content under ``root`` from now on.

    :param download_url: Base URL under which files are published
        (``<download_url>/<alias id>/<filename>``), or None to hand out
        ``file:`` URLs.
    :return: The `LibrarianStorage`, also registered as the
        `ILibrarianStorage` utility.
    """
    storage = LibrarianStorage(root, download_url=download_url)
    provideUtility(storage, ILibrarianStorage)
    return storage


def get_librarian_storage():
    """The configured `ILibrarianStorage`."""
    return getUtility(ILibrarianStorage)
