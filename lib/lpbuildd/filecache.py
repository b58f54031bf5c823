# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The builder's file cache: files on disk, named by their SHA-1.

Everything a builder hands back to the build farm master is filed here
and served from ``/filecache/<sha1>``.  A cache entry is immutable once
it exists, so storing is atomic (write or link under a temporary name,
then rename) and a second store of the same content is a no-op.

Names that are not 40 lower-case hex digits are never cache entries;
`is_valid_sha1` is the single gate for that, used both when filing and
when serving, so a request can never name a path outside the cache.
"""

__all__ = [
    "CHUNK_SIZE",
    "FileCache",
    "is_valid_sha1",
    "sha1_of_path",
]

import errno
import hashlib
import os
import re
import shutil
import stat
import tempfile

# Read and write files in chunks of this size; nothing in the cache is
# ever read into memory whole.
CHUNK_SIZE = 1024 * 1024

_SHA1_RE = re.compile(r"[0-9a-f]{40}")

# Prefix of temporary names in the cache directory.  It starts with a
# dot, so it can never be mistaken for a cache entry or a waiting file.
_TEMP_PREFIX = ".tmp-"


def is_valid_sha1(sha1):
    """Is `sha1` exactly 40 lower-case hex digits (as `str`)?"""
    return isinstance(sha1, str) and _SHA1_RE.fullmatch(sha1) is not None


def sha1_of_path(path):
    """Return the hex SHA-1 of the file at `path`, read in chunks."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FileCache:
    """A directory of immutable files named by their SHA-1."""

    def __init__(self, path):
        if not os.path.isdir(path):
            raise ValueError(f"FileCache path is not a dir: {path}")
        self.path = path

    def cachePath(self, sha1):
        """Return the path of the cache entry for `sha1`.

        :raises ValueError: if `sha1` is not a well-formed SHA-1.
        """
        if not is_valid_sha1(sha1):
            raise ValueError(f"Not a SHA-1: {sha1!r}")
        return os.path.join(self.path, sha1)

    def contains(self, sha1):
        """Is there a regular file in the cache for `sha1`?"""
        if not is_valid_sha1(sha1):
            return False
        try:
            st = os.lstat(os.path.join(self.path, sha1))
        except FileNotFoundError:
            return False
        return stat.S_ISREG(st.st_mode)

    def open(self, sha1):
        """Open the cache entry for `sha1` for reading, or return None.

        Symbolic links and anything but a regular file are refused, so a
        cache entry can only be served if it was filed here.
        """
        if not is_valid_sha1(sha1):
            return None
        try:
            fd = os.open(
                os.path.join(self.path, sha1), os.O_RDONLY | os.O_NOFOLLOW
            )
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                return None
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def storeFile(self, path, sha1=None, verify=False):
        """File the content of `path` in the cache and return its SHA-1.

        The file is hard-linked into the cache when it is on the same
        file system, else copied; either way it appears under its final
        name atomically.  A hard link shares the inode, so callers must
        not modify `path` in place afterwards (replacing or deleting it
        is fine).

        :param sha1: the SHA-1 of the file if the caller already knows
            it (e.g. computed while writing the file).  It is trusted
            unless `verify` is true; a wrong value here would be caught
            by the master, which checks every file it fetches.
        :param verify: recompute the SHA-1 even when `sha1` is given,
            and raise `ValueError` if it differs.
        """
        if sha1 is not None and not is_valid_sha1(sha1):
            raise ValueError(f"Not a SHA-1: {sha1!r}")
        fd, tmppath = tempfile.mkstemp(dir=self.path, prefix=_TEMP_PREFIX)
        os.close(fd)
        try:
            os.unlink(tmppath)
            try:
                os.link(path, tmppath)
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                    raise
                actual = self._copyAndHash(path, tmppath)
            else:
                actual = None
                if sha1 is None or verify:
                    actual = sha1_of_path(tmppath)
            if sha1 is None:
                sha1 = actual
            elif verify and actual != sha1:
                raise ValueError(
                    f"{path} has SHA-1 {actual}, not the expected {sha1}"
                )
            os.replace(tmppath, os.path.join(self.path, sha1))
        finally:
            # rename(2) is a no-op when both names are links to the same
            # inode, which leaves the temporary name behind.
            try:
                os.unlink(tmppath)
            except FileNotFoundError:
                pass
        return sha1

    def _copyAndHash(self, path, tmppath):
        digest = hashlib.sha1()
        with open(path, "rb") as src, open(tmppath, "wb") as dst:
            for chunk in iter(lambda: src.read(CHUNK_SIZE), b""):
                digest.update(chunk)
                dst.write(chunk)
        shutil.copymode(path, tmppath)
        return digest.hexdigest()

    def newTemporaryFile(self):
        """Return (file object, path) of a new temporary file in the cache.

        For callers that want to write content and `commitTemporaryFile`
        it without copying.
        """
        fd, tmppath = tempfile.mkstemp(dir=self.path, prefix=_TEMP_PREFIX)
        return os.fdopen(fd, "wb"), tmppath

    def commitTemporaryFile(self, tmppath, sha1):
        """Rename a temporary file to its cache entry `sha1`."""
        os.replace(tmppath, self.cachePath(sha1))
        return sha1

    def remove(self, sha1):
        """Remove the cache entry for `sha1`, if any."""
        try:
            os.unlink(self.cachePath(sha1))
        except FileNotFoundError:
            pass

    def removeAll(self):
        """Remove every file in the cache directory (not directories)."""
        for entry in os.scandir(self.path):
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
