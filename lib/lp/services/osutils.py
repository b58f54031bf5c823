# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Opening files that may not be what their names say.

An upload directory, or a librarian, may hold a symbolic link, a FIFO,
a directory or a device where a file is expected.  `open_regular`
opens without following a link (``O_NOFOLLOW``) or waiting for a
writer (``O_NONBLOCK``), then checks with ``fstat`` that what it opened
is a regular file: a link is never followed out of the directory, and a
FIFO cannot block the reader for ever.
"""

__all__ = [
    "NotARegularFile",
    "check_regular_files",
    "open_regular",
]

import errno
import os
import stat

_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class NotARegularFile(OSError):
    """A path names a link, FIFO, directory, device or socket."""

    def __init__(self, path, what):
        super().__init__(errno.EINVAL, f"{what}, not a regular file", path)
        self.what = what

    def __str__(self):
        return f"{self.filename} is {self.strerror}"


def _kind(mode):
    for test, what in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return what
    return "not a regular file"


def open_regular(path, dir_fd=None):
    """A binary file object of the regular file at ``path``.

    :raises NotARegularFile: if ``path`` is anything else (a symbolic
        link included, even to a regular file).
    :raises OSError: if it cannot be opened (e.g. FileNotFoundError).
    """
    try:
        fd = os.open(path, _FLAGS, dir_fd=dir_fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotARegularFile(path, "a symbolic link") from None
        if e.errno in (errno.ENXIO, errno.EISDIR):
            # A socket, or a directory opened for writing.
            st = os.lstat(path, dir_fd=dir_fd)
            raise NotARegularFile(path, _kind(st.st_mode)) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotARegularFile(path, _kind(st.st_mode))
        # Reads of a regular file never block; plain reads from here.
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_regular_files(directory):
    """Raise `NotARegularFile` for the first entry that is not one.

    Entries are looked at with ``lstat``: a link to a regular file does
    not count as one.
    """
    with os.scandir(directory) as entries:
        for entry in sorted(entries, key=lambda entry: entry.name):
            mode = entry.stat(follow_symlinks=False).st_mode
            if not stat.S_ISREG(mode):
                raise NotARegularFile(entry.path, _kind(mode))
