# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Ownership by flock: what a dead process left is what nobody locks.

A process that writes a directory (a gather's temporary layout, a run's
work directory) holds an exclusive flock on a file inside it for as long
as it works.  The kernel drops the lock however the process dies, so
liveness needs no pid and no clock: a directory whose lock can be taken
is debris, and whoever takes the lock may remove it.
"""

__all__ = [
    "is_locked",
    "remove_if_dead",
    "try_lock",
]

import errno
import fcntl
import os
import shutil


def try_lock(fd, shared=False):
    """Take a flock on ``fd`` without waiting.

    :return: True if taken, False if another open file holds it.
    """
    operation = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


def is_locked(path):
    """Whether a live process holds the flock on the file ``path``.

    A missing file is not locked.  Probing takes the lock for an instant
    when nobody holds it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        return not try_lock(fd)
    finally:
        os.close(fd)


def remove_if_dead(path, lock_name, now, grace, abandoned=None):
    """Remove the directory ``path`` if its writer is dead.

    Dead means nobody holds the flock on ``path/lock_name``; the lock is
    held while removing, so two sweepers never both remove.  A directory
    without its lock file is removed only once older than ``grace``
    seconds (its writer may be between creating and locking it) and,
    if given, when ``abandoned(path)`` says so.  Best effort: a
    directory that cannot be examined is left.

    :return: True if removed.
    """
    try:
        fd = os.open(
            os.path.join(path, lock_name),
            os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
        )
    except FileNotFoundError:
        try:
            old = now - os.lstat(path).st_mtime > grace
            if not old or (abandoned is not None and not abandoned(path)):
                return False
        except OSError:
            return False
        shutil.rmtree(path, ignore_errors=True)
        return True
    except OSError:
        return False
    try:
        if not try_lock(fd):
            return False
        shutil.rmtree(path, ignore_errors=True)
        return True
    finally:
        os.close(fd)
