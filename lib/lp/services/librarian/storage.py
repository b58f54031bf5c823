# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Content-addressed file storage in a local directory.

Content with sha256 ``h`` lives at ``<root>/<h[:2]>/<h>``.  Writes copy
the input in 1 MiB chunks to a temporary file under ``<root>/incoming``,
fsync it, check it against what the caller expected, and only then
rename it into place, so a reader never sees a partial file and a
failed write leaves nothing behind.

Within `LibrarianStorage.syncAtCommit` (upload processing, which may
store thousands of small documents), new content is renamed into place
unsynced and the transaction's commit first fsyncs all of it, in
parallel, and then each directory once: one batch instead of two
fsyncs a file, and still no committed row names content that is not on
disk.  Content already in place is never replaced by unsynced bytes.

`LibrarianStorage.storePath` takes a file that is already on disk by
hard-linking it under ``incoming`` instead of copying it (when it is on
the same file system), then hashes, checks and renames it the same way:
one read of the content and no second copy to write back.  Of the three
hashes, md5 (the slowest) runs in a helper thread for content larger
than a chunk.

A file whose sha1, sha256 and size are already known, because the
process that wrote it computed them from the bytes it wrote (the build
farm's download workers, see `VerifiedFile`), is not read at all: once
linked, one ``fstat`` of the linked inode checks that it is still the
file that was hashed (same inode, size and modification time), and its
content is recorded with those digests and no md5.  If the check fails
the file is hashed as any other.

Integrity of what is stored:

- `LibrarianStorage.checkContent` re-reads stored content and says
  whether it still has its sha256 and the expected size; the reuse
  paths call it (through `verified_content`) before trusting stored
  bytes, and damaged content is moved aside by `quarantine` into
  ``<root>/quarantine/`` (never deleted: it is evidence) so that the
  next store of that content puts good bytes back.  Verification is
  remembered per process by inode, size, mtime and ctime, so the build
  farm's reuse check and upload processing's, in the same process, read
  a layer once.
- The in-use lock: every process that stores content holds a shared
  `flock` on ``<root>/.in-use`` from its first store until its
  transaction ends (commit or abort), because until then the content
  it stored has no committed row and looks unreferenced.  Removing
  unreferenced content (a failed upload's cleanup, ``lp-oci verify
  --repair``) happens only under the exclusive lock, taken without
  waiting (`exclusive`): so content an uncommitted upload may be using
  is never removed, and temporary files under ``incoming`` are known to
  be debris when the exclusive lock is held.
"""

__all__ = [
    "CHUNK_SIZE",
    "IN_USE_LOCK",
    "LibrarianStorage",
    "QUARANTINE",
    "SYNC_THREADS",
    "StoredContent",
    "VerifiedFile",
    "configure_librarian",
    "get_librarian_storage",
]

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import stat
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import transaction
from zope.component import getUtility, provideUtility
from zope.interface import implementer

from lp.services.hashing import HashInThread
from lp.services.librarian.interfaces import ContentMismatch, ILibrarianStorage
from lp.services.osutils import NotARegularFile, open_regular
from ocitypes.faultpoint import checkpoint
from ocitypes.flock import try_lock

CHUNK_SIZE = 1024 * 1024
IN_USE_LOCK = ".in-use"
QUARANTINE = "quarantine"
_SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")


class StoredContent(NamedTuple):
    sha256: str
    sha1: str
    # None when the content was taken from a `VerifiedFile`.
    md5: object
    size: int


class VerifiedFile(NamedTuple):
    """A file on disk whose digests were computed as it was written.

    ``inode``, ``size`` and ``mtime_ns`` are the file's ``stat`` once
    written: a file that still has them has not been rewritten since.
    """

    sha256: str
    sha1: str
    size: int
    inode: int
    mtime_ns: int

    @classmethod
    def fromPath(cls, path, sha256, sha1):
        """The `VerifiedFile` for ``path``, whose digests are given."""
        st = os.stat(path)
        return cls(sha256, sha1, st.st_size, st.st_ino, st.st_mtime_ns)

    def matches(self, st):
        """Whether ``st`` (a ``stat`` result) is still this file."""
        return (
            st.st_ino == self.inode
            and st.st_size == self.size
            and st.st_mtime_ns == self.mtime_ns
        )


class _Hashes:
    """sha256, sha1 and md5 of a stream of chunks, and its size.

    md5 is computed in a helper thread (`HashInThread`) while the caller
    computes the others, so hashing takes about as long as md5 alone.
    """

    def __init__(self):
        self.sha256 = hashlib.sha256()
        self.sha1 = hashlib.sha1()
        self.md5 = HashInThread("md5")
        self.size = 0

    def update(self, chunk):
        self.size += len(chunk)
        self.md5.update(chunk)
        self.sha256.update(chunk)
        self.sha1.update(chunk)

    def close(self):
        self.md5.close()

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


def _fsync_path(path, flags=os.O_NOFOLLOW | os.O_CLOEXEC):
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(path):
    _fsync_path(path, os.O_DIRECTORY)


# Files `LibrarianStorage.syncAtCommit` fsyncs at once: the file system
# commits its journal once for many.
SYNC_THREADS = 16


def _sync_paths(paths):
    """fsync every file of ``paths``, then each of their directories."""
    paths = sorted(paths)
    if not paths:
        return
    directories = sorted({os.path.dirname(path) for path in paths})
    with ThreadPoolExecutor(min(SYNC_THREADS, len(paths))) as pool:
        list(pool.map(_fsync_path, paths))
        list(pool.map(_fsync_directory, directories))


def _stamp(st):
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@implementer(ILibrarianStorage)
class LibrarianStorage:
    """See `ILibrarianStorage`."""

    def __init__(self, root, download_url=None):
        self.root = os.path.abspath(root)
        self.download_url = download_url
        self.incoming = os.path.join(self.root, "incoming")
        os.makedirs(self.incoming, exist_ok=True)
        self.log = logging.getLogger("lp.services.librarian")
        # sha256 -> _stamp of the file when it was last verified.
        self._verified = {}
        self._local = threading.local()

    # The in-use lock (see the module docstring).

    def _lockPath(self):
        return os.path.join(self.root, IN_USE_LOCK)

    def _holdInUse(self):
        """Hold the shared in-use lock until this transaction ends."""
        local = self._local
        txn = transaction.get()
        if getattr(local, "fd", None) is not None:
            if local.txn is txn:
                return
            self._releaseInUse()
        fd = os.open(
            self._lockPath(), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except BaseException:
            os.close(fd)
            raise
        local.fd, local.txn = fd, txn
        txn.addAfterCommitHook(lambda status: self._releaseInUse())
        txn.addAfterAbortHook(self._releaseInUse)

    def _releaseInUse(self):
        local = self._local
        fd = getattr(local, "fd", None)
        if fd is not None:
            local.fd = local.txn = None
            os.close(fd)

    @contextlib.contextmanager
    def exclusive(self):
        """Try to take the exclusive in-use lock, without waiting.

        Yields True while held: no other process (nor another
        transaction of this one) is between storing content and ending
        its transaction.  Yields False if some are.  On a read-only
        file system (a read-only copy of a state) nothing can be
        stored: the lock is taken on the file as it is, or, if there is
        none, the librarian is idle.
        """
        try:
            fd = os.open(
                self._lockPath(), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
        except OSError as e:
            if e.errno != errno.EROFS:
                raise
            try:
                fd = os.open(self._lockPath(), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                yield True
                return
        try:
            yield try_lock(fd)
        finally:
            os.close(fd)

    # Syncing many files at once (see the module docstring).

    @contextlib.contextmanager
    def syncAtCommit(self):
        """Within, new content is made durable when the transaction
        commits, all of it at once, instead of as each file is stored.

        The files are renamed into place at once, so this process and
        others read them as usual; a before-commit hook of the current
        transaction fsyncs them (`SYNC_THREADS` at a time) and then each
        of their directories once, and a failure fails the commit.  So
        no committed row ever names content that is not on disk, even if
        the machine stops; content of a transaction that never commits
        is unreferenced, like that of any failed upload.
        """
        local = self._local
        outer = getattr(local, "sync_at_commit", False)
        local.sync_at_commit = True
        try:
            yield
        finally:
            local.sync_at_commit = outer

    def _pendingSyncs(self):
        """The set of paths to sync at commit, or None to sync now."""
        local = self._local
        if not getattr(local, "sync_at_commit", False):
            return None
        txn = transaction.get()
        if getattr(local, "pending_txn", None) is not txn:
            pending = set()
            local.pending, local.pending_txn = pending, txn
            txn.addBeforeCommitHook(_sync_paths, (pending,))
            txn.addAfterAbortHook(pending.clear)
        return local.pending

    # Integrity.

    def checkContent(self, sha256, expected_size=None, full=False):
        """Why stored content cannot be trusted, or None if it can.

        Reads the whole file unless it was verified in this process and
        has not changed since (same inode, size, mtime and ctime), or
        always with ``full``.

        :return: None, or a one-line reason (missing, size, sha256).
        """
        path = self.getPath(sha256)
        try:
            with open_regular(path) as f:
                st = os.fstat(f.fileno())
                if expected_size is not None and st.st_size != expected_size:
                    return (
                        f"{path} is {st.st_size} bytes, expected "
                        f"{expected_size}"
                    )
                if not full and self._verified.get(sha256) == _stamp(st):
                    return None
                hasher = hashlib.sha256()
                while True:
                    chunk = f.read(CHUNK_SIZE)
                    if not chunk:
                        break
                    hasher.update(chunk)
                if hasher.hexdigest() != sha256:
                    return f"{path} has sha256 {hasher.hexdigest()}"
                after = os.fstat(f.fileno())
        except FileNotFoundError:
            return f"{path} is missing"
        except NotARegularFile as e:
            # Never followed: the librarian holds only regular files.
            return str(e)
        if _stamp(after) == _stamp(st):
            self._verified[sha256] = _stamp(st)
        return None

    def isIntact(self, sha256, expected_size=None):
        """Whether stored content can be reused; quarantine it if not.

        Damaged content (wrong size or sha256) is logged and moved to
        ``<root>/quarantine/``; missing content is logged.
        """
        reason = self.checkContent(sha256, expected_size)
        if reason is None:
            return True
        if self.exists(sha256):
            self.quarantine(sha256, reason)
        else:
            self.log.warning("librarian: cannot reuse %s: %s", sha256, reason)
        return False

    def quarantine(self, sha256, reason):
        """Move damaged content aside, under ``<root>/quarantine/``.

        :return: The path it was moved to, or None if it was gone.
        """
        self._verified.pop(sha256, None)
        directory = os.path.join(self.root, QUARANTINE)
        os.makedirs(directory, exist_ok=True)
        target = os.path.join(
            directory, f"{sha256}.{time.strftime('%Y%m%dT%H%M%S')}"
        )
        while os.path.lexists(target):
            target += "+"
        try:
            os.rename(self.getPath(sha256), target)
        except FileNotFoundError:
            return None
        self.log.warning(
            "librarian: quarantined %s as %s: %s", sha256, target, reason
        )
        return target

    def getPath(self, sha256):
        """See `ILibrarianStorage`."""
        if not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
            raise ValueError(f"Not a hex sha256: {sha256!r}")
        return os.path.join(self.root, sha256[:2], sha256)

    def exists(self, sha256):
        """See `ILibrarianStorage`.

        A link, even to a regular file, is not content.
        """
        try:
            return stat.S_ISREG(os.lstat(self.getPath(sha256)).st_mode)
        except FileNotFoundError:
            return False

    def open(self, sha256):
        """See `ILibrarianStorage`.

        Never follows a link out of the librarian (`open_regular`).
        """
        return open_regular(self.getPath(sha256))

    def remove(self, sha256):
        """See `ILibrarianStorage`."""
        self._verified.pop(sha256, None)
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
        self._holdInUse()
        fd, temp_path = tempfile.mkstemp(
            dir=self.incoming, prefix=_temp_prefix()
        )
        lock = _lock_temp(temp_path)
        try:
            with os.fdopen(fd, "wb") as out:
                stored = self._copy(file, out, expected_size)
                out.flush()
                return self._commit(
                    temp_path,
                    stored,
                    expected_sha256,
                    expected_size,
                    out.fileno(),
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

    def storePath(
        self, path, expected_sha256=None, expected_size=None, verified=None
    ):
        """See `ILibrarianStorage`.

        Only a regular file is stored (`open_regular`: never a link, a
        FIFO, a directory or a device).  It is taken by hard link when
        the caller's name is its only one and it is on this file
        system; otherwise (another name may change it later) it is
        copied, so that the librarian holds only files no one else
        writes.
        """
        if expected_sha256 is not None:
            self.getPath(expected_sha256)
        if verified is not None:
            self.getPath(verified.sha256)
        with open_regular(path) as source:
            source_stat = os.fstat(source.fileno())
            self._holdInUse()
            if source_stat.st_nlink == 1:
                stored = self._storeLinked(
                    path,
                    source_stat,
                    expected_sha256,
                    expected_size,
                    verified,
                )
                if stored is not None:
                    return stored
            return self.store(source, expected_sha256, expected_size)

    def _storeLinked(
        self, path, source_stat, expected_sha256, expected_size, verified
    ):
        """Store ``path`` by hard link; None if it cannot be linked."""
        fd, temp_path = tempfile.mkstemp(
            dir=self.incoming, prefix=_temp_prefix()
        )
        os.close(fd)
        os.unlink(temp_path)
        try:
            # The name itself, never what a link names.
            os.link(path, temp_path, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (
                errno.EXDEV,
                errno.EPERM,
                errno.EMLINK,
                errno.EOPNOTSUPP,
            ):
                raise
            return None
        lock = _lock_temp(temp_path)
        try:
            # Hash (or check) through our own name: the inode cannot be
            # swapped.
            with open_regular(temp_path) as f:
                st = os.fstat(f.fileno())
                if (st.st_dev, st.st_ino) != (
                    source_stat.st_dev,
                    source_stat.st_ino,
                ):
                    # Replaced since it was opened: copy what was.
                    return None
                if verified is not None and verified.matches(st):
                    stored = StoredContent(
                        verified.sha256, verified.sha1, None, verified.size
                    )
                else:
                    stored = self._copy(f, None, expected_size)
                return self._commit(
                    temp_path,
                    stored,
                    expected_sha256,
                    expected_size,
                    f.fileno(),
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
                if not try_lock(fd):
                    continue
                os.unlink(path)
                removed.append(path)
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)
        return removed

    def _commit(self, temp_path, stored, expected_sha256, expected_size, fd):
        """Check ``stored`` and move ``temp_path`` (open as ``fd``) into
        place: synced now, or when the transaction commits
        (`syncAtCommit`) if nothing is there yet."""
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
        # the same bytes is harmless and keeps this free of races (and
        # repairs content that was damaged there).
        # Content already there may have committed rows: it is only
        # ever replaced by bytes that are on disk.
        pending = self._pendingSyncs()
        if pending is None or os.path.lexists(final_path):
            os.fsync(fd)
            pending = None
        checkpoint("librarian.store")
        os.replace(temp_path, final_path)
        if pending is None:
            _fsync_directory(directory)
        else:
            pending.add(final_path)
        checkpoint("librarian.stored")
        try:
            self._verified[stored.sha256] = _stamp(os.stat(final_path))
        except FileNotFoundError:
            pass
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
