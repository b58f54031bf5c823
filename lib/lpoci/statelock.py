# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""One writer at a time on a state directory.

The commands that drive builds and jobs on a state directory (``lp-oci
run``, ``run-jobs``, ``verify --repair``) hold an exclusive `flock` on
``<state>/state.lock`` for their whole life; a second one waits for it,
saying once on stderr ``lp-oci: state DIR is in use by pid N (COMMAND),
waiting``, and then runs.  So concurrent commands never fail for a lock
and never mark a good build failed: they are serialised, as Launchpad's
build farm manager (one process) and ``process-upload`` (a cron script
under a lock file) are.  The kernel drops the lock when its holder dies,
however it dies.

Readers (``serve``, ``export``, ``verify`` without ``--repair``) take no
lock: SQLite lets them read beside the writer, PostgreSQL too.  Below
this lock the librarian and the content rows are safe for concurrent
writers anyway (the librarian's in-use lock, unique content rows with
insert-or-get and retried transactions on PostgreSQL).
"""

__all__ = [
    "StateLock",
    "state_lock_holder",
]

import fcntl
import os

from ocitypes.flock import try_lock

LOCK_NAME = "state.lock"


def _path(state_dir):
    return os.path.join(os.path.abspath(state_dir), LOCK_NAME)


def _read_holder(fd):
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except OSError:
        return None, None
    pid = int(text[0]) if text and text[0].isdigit() else None
    return pid, " ".join(text[1:]) or None


def state_lock_holder(state_dir):
    """The pid holding ``state_dir``'s lock (0 if unknown), or None."""
    try:
        fd = os.open(_path(state_dir), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        if not try_lock(fd, shared=True):
            pid, _ = _read_holder(fd)
            return pid or 0
        return None
    finally:
        os.close(fd)


class StateLock:
    """The exclusive lock on a state directory, as a context manager.

    :param wait: A callable given the one-line message when another
        process holds the lock (before waiting for it).
    """

    def __init__(self, state_dir, command, wait=None):
        self.path = _path(state_dir)
        self.state_dir = state_dir
        self.command = command
        self.wait = wait
        self._fd = None

    def acquire(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if not try_lock(fd):
                pid, command = _read_holder(fd)
                if self.wait is not None:
                    self.wait(
                        f"state {self.state_dir} is in use by pid "
                        f"{pid or 'unknown'}"
                        + (f" ({command})" if command else "")
                        + ", waiting"
                    )
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {self.command}\n".encode(), 0)
        except BaseException as e:
            os.close(fd)
            if isinstance(e, OSError) and e.filename is None:
                # A failed write (a full disk) names no file: name it.
                raise OSError(e.errno, e.strerror, self.path) from None
            raise
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            os.close(fd)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
