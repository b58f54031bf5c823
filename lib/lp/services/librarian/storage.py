# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Content-addressed file storage in a local directory.

Content with sha256 ``h`` lives at ``<root>/<h[:2]>/<h>``.  Writes copy
the input in 1 MiB chunks to a temporary file under ``<root>/incoming``,
fsync it, check it against what the caller expected, and only then
rename it into place, so a reader never sees a partial file and a
failed write leaves nothing behind.

`LibrarianStorage.storePath` takes a file that is already on disk by
hard-linking it under ``incoming`` instead of copying it (when it is on
the same file system), then hashes, checks and renames it the same way:
one read of the content and no second copy to write back.  Of the three
hashes, md5 (the slowest) runs in a helper thread for content larger
than a chunk.
"""

__all__ = [
    "CHUNK_SIZE",
    "LibrarianStorage",
    "StoredContent",
    "configure_librarian",
    "get_librarian_storage",
]

import errno
import fcntl
import hashlib
import os
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from zope.component import getUtility, provideUtility
from zope.interface import implementer

from lp.services.librarian.interfaces import ContentMismatch, ILibrarianStorage
from ocitypes.faultpoint import checkpoint

CHUNK_SIZE = 1024 * 1024
_SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")


class StoredContent(NamedTuple):
    sha256: str
    sha1: str
    md5: str
    size: int


class _Hashes:
    """sha256, sha1 and md5 of a stream of chunks, and its size.

    From the second chunk on, md5 is computed in a helper thread (hashlib
    releases the GIL on large buffers) while the caller computes the
    others, so hashing takes about as long as md5 alone.
    """

    def __init__(self):
        self.sha256 = hashlib.sha256()
        self.sha1 = hashlib.sha1()
        self.md5 = hashlib.md5()
        self.size = 0
        self._executor = None
        self._pending = None

    def update(self, chunk):
        self.size += len(chunk)
        if self._executor is None and self.size == len(chunk):
            # The first chunk: small content never needs a thread.
            self.md5.update(chunk)
        else:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    1, thread_name_prefix="librarian-md5"
                )
            self._wait()
            self._pending = self._executor.submit(self.md5.update, chunk)
        self.sha256.update(chunk)
        self.sha1.update(chunk)

    def _wait(self):
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self):
        try:
            self._wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown()
                self._executor = None

    def result(self):
        self.close()
        return StoredContent(
            self.sha256.hexdigest(),
            self.sha1.hexdigest(),
            self.md5.hexdigest(),
            self.size,
        )


# Seconds a temporary file may exist before its writer has locked it.
_TEMP_GRACE = 60


def _temp_prefix():
    return f".tmp-{os.getpid()}-"


def _writer_alive(name):
    """Whether the process named in a temporary file's name may live."""
    try:
        pid = int(name.split("-")[1])
    except (IndexError, ValueError):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True


def _lock_temp(path):
    """An fd holding an exclusive flock on ``path`` (see sweepIncoming)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


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
        """Hash ``file`` to its end, writing it to ``out`` unless None."""
        hashes = _Hashes()
        try:
            while True:
                chunk = file.read(CHUNK_SIZE)
                if not chunk:
                    break
                if not isinstance(chunk, bytes):
                    raise TypeError("The librarian stores bytes, not text")
                if (
                    expected_size is not None
                    and hashes.size + len(chunk) > expected_size
                ):
                    raise ContentMismatch(
                        f"Content is longer than the expected "
                        f"{expected_size} bytes"
                    )
                hashes.update(chunk)
                if out is not None:
                    out.write(chunk)
        finally:
            hashes.close()
        return hashes.result()

    def store(self, file, expected_sha256=None, expected_size=None):
        """See `ILibrarianStorage`."""
        if expected_sha256 is not None:
            # Fail before reading anything if the expectation is garbage.
            self.getPath(expected_sha256)
        fd, temp_path = tempfile.mkstemp(
            dir=self.incoming, prefix=_temp_prefix()
        )
        lock = _lock_temp(temp_path)
        try:
            with os.fdopen(fd, "wb") as out:
                stored = self._copy(file, out, expected_size)
                out.flush()
                os.fsync(out.fileno())
            return self._commit(
                temp_path, stored, expected_sha256, expected_size
            )
        except BaseException as e:
            try:
                os.unlink(temp_path)
            except FileNotFoundError:
                pass
            if isinstance(e, OSError) and e.filename is None:
                # A failed write (ENOSPC, EIO) names no file: name it.
                raise OSError(e.errno, e.strerror, temp_path) from None
            raise
        finally:
            os.close(lock)

    def storePath(self, path, expected_sha256=None, expected_size=None):
        """See `ILibrarianStorage`."""
        if expected_sha256 is not None:
            self.getPath(expected_sha256)
        fd, temp_path = tempfile.mkstemp(
            dir=self.incoming, prefix=_temp_prefix()
        )
        os.close(fd)
        os.unlink(temp_path)
        try:
            os.link(path, temp_path)
        except OSError as e:
            if e.errno not in (
                errno.EXDEV,
                errno.EPERM,
                errno.EMLINK,
                errno.EOPNOTSUPP,
            ):
                raise
            with open(path, "rb") as f:
                return self.store(f, expected_sha256, expected_size)
        lock = _lock_temp(temp_path)
        try:
            # Hash through our own name: the inode cannot be swapped.
            with open(temp_path, "rb") as f:
                stored = self._copy(f, None, expected_size)
                os.fsync(f.fileno())
            return self._commit(
                temp_path, stored, expected_sha256, expected_size
            )
        finally:
            # rename(2) does nothing when both names are links to the
            # same inode (``path`` already in storage): tidy up.
            try:
                os.unlink(temp_path)
            except FileNotFoundError:
                pass
            os.close(lock)

    def sweepIncoming(self, now=None):
        """Remove temporary files that dead writers left in `incoming`.

        Each writer holds an exclusive flock on its temporary file
        (``.tmp-<pid>-*``) until the file is renamed into place or
        removed, and the kernel drops the lock of a process that dies;
        so a temporary file whose lock can be taken is debris once its
        writer is gone (no process ``<pid>``) or it is older than a
        minute (its writer may be between creating and locking it).
        Safe while other processes store.  :return: the paths removed.
        """
        now = time.time() if now is None else now
        removed = []
        for name in os.listdir(self.incoming):
            if not name.startswith(".tmp-"):
                continue
            path = os.path.join(self.incoming, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                # ctime: link(2) sets it on a linked inode too.
                young = now - os.fstat(fd).st_ctime < _TEMP_GRACE
                if young and _writer_alive(name):
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue
                os.unlink(path)
                removed.append(path)
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)
        return removed

    def _commit(self, temp_path, stored, expected_sha256, expected_size):
        """Check ``stored`` and move ``temp_path`` into place."""
        if expected_size is not None and stored.size != expected_size:
            raise ContentMismatch(
                f"Content is {stored.size} bytes, expected {expected_size}"
            )
        if expected_sha256 is not None and stored.sha256 != expected_sha256:
            raise ContentMismatch(
                f"Content has sha256 {stored.sha256}, expected "
                f"{expected_sha256}"
            )
        final_path = self.getPath(stored.sha256)
        directory = os.path.dirname(final_path)
        os.makedirs(directory, exist_ok=True)
        # Identical content may already be there; replacing it with
        # the same bytes is harmless and keeps this free of races.
        checkpoint("librarian.store")
        os.replace(temp_path, final_path)
        _fsync_directory(directory)
        checkpoint("librarian.stored")
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
