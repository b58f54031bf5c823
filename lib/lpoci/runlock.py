# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Which process owns what in a state directory, and is it alive.

Every command that works on a state directory takes a `RunLock`: a new
work directory ``<state>/work/<run id>/`` holding a file ``lock`` on
which the process holds an exclusive `fcntl.flock` for its whole life.
The kernel drops the lock when the process dies, however it dies
(SIGKILL included), so "is the owner alive" is "is the lock still
held", with no pid reuse or clock to trust.

The run records what it owns (``owner.json``: pid, start time, command,
and keys such as ``build:12`` or ``job:3``) *before* the database
commit that makes those rows visible, so a row in a non-final state is
either owned by a live run or stranded.  Everything a run writes
outside the database (the builder's build directory and file cache,
the build farm's ``grabbing``/``incoming`` upload directories,
temporary files) lives in its work directory, removed when the run
ends and swept at the next start if the run died.

The one liveness function is `owner_of`: ``owner_of(state, "build:12")``
is the live run (its ``owner.json``) that owns build 12, or None.
`sweep_work_dirs` removes the work directories of dead runs.
"""

__all__ = [
    "RunLock",
    "is_locked",
    "live_runs",
    "owner_of",
    "sweep_work_dirs",
    "work_root",
]

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time

from ocitypes.flock import is_locked, remove_if_dead

WORK_DIR = "work"
LOCK_NAME = "lock"
OWNER_NAME = "owner.json"

# A work directory without a lock file is being created, unless it is
# older than this (seconds): its creator died between mkdir and lock.
CREATION_GRACE = 60


def work_root(state_dir):
    """``<state>/work``, where every run's work directory lives."""
    return os.path.join(os.path.abspath(state_dir), WORK_DIR)


def _read_owner(run_dir):
    try:
        with open(os.path.join(run_dir, OWNER_NAME)) as f:
            owner = json.load(f)
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def live_runs(state_dir):
    """The ``owner.json`` of every live run on ``state_dir``.

    Each has ``pid``, ``started`` (Unix time), ``command``, ``run_id``,
    ``path`` and ``owns`` (a list of keys such as ``build:12``).
    """
    root = work_root(state_dir)
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    runs = []
    for name in names:
        run_dir = os.path.join(root, name)
        if not is_locked(os.path.join(run_dir, LOCK_NAME)):
            continue
        owner = _read_owner(run_dir) or {}
        owner.setdefault("owns", [])
        owner["run_id"] = name
        owner["path"] = run_dir
        # Re-check: the run may have ended while owner.json was read.
        if is_locked(os.path.join(run_dir, LOCK_NAME)):
            runs.append(owner)
    return runs


def owner_of(state_dir, key):
    """The live run owning ``key`` (e.g. ``"build:12"``), or None.

    This is the liveness check for rows in a non-final state (a build
    NEEDSBUILD/BUILDING/GATHERING/UPLOADING, a job RUNNING): None means
    no live process is working on it, so it is stranded.
    """
    for run in live_runs(state_dir):
        if key in run["owns"]:
            return run
    return None


def sweep_work_dirs(state_dir, now=None):
    """Remove the work directories of dead runs; return their paths."""
    root = work_root(state_dir)
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    now = time.time() if now is None else now
    removed = []
    for name in names:
        run_dir = os.path.join(root, name)
        if remove_if_dead(run_dir, LOCK_NAME, now, CREATION_GRACE):
            removed.append(run_dir)
    return removed


class RunLock:
    """This process's work directory and lock on a state directory.

    Use as a context manager, or `acquire` and `release`.  `own` records
    a key before the commit that makes it visible; `path` is the work
    directory.  `release` removes the work directory.
    """

    def __init__(self, state_dir, command):
        self.state_dir = os.path.abspath(state_dir)
        self.command = command
        self.path = None
        self.owns = []
        self._fd = None

    def acquire(self):
        root = work_root(self.state_dir)
        os.makedirs(root, exist_ok=True)
        self.path = tempfile.mkdtemp(
            prefix=f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-",
            dir=root,
        )
        self._fd = os.open(
            os.path.join(self.path, LOCK_NAME),
            os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
            0o600,
        )
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self.started = time.time()
        try:
            self._write_owner()
        except BaseException:
            self.release()
            raise
        return self

    def _write_owner(self):
        owner = {
            "pid": os.getpid(),
            "started": self.started,
            "command": self.command,
            "owns": self.owns,
        }
        final = os.path.join(self.path, OWNER_NAME)
        temp = final + ".tmp"
        try:
            with open(temp, "w") as f:
                json.dump(owner, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, final)
        except OSError as e:
            if e.filename is None:
                # A failed write names no file: name it.
                raise OSError(e.errno, e.strerror, temp) from None
            raise

    def own(self, key):
        """Record that this run owns ``key`` (before committing it)."""
        if key not in self.owns:
            self.owns.append(key)
            self._write_owner()

    def subdir(self, name):
        """A directory ``name`` in the work directory, made if needed."""
        path = os.path.join(self.path, name)
        os.makedirs(path, exist_ok=True)
        return path

    @contextlib.contextmanager
    def tempdir(self):
        """Temporary files of this process, and its children, go here.

        Sets `tempfile.tempdir` and ``$TMPDIR`` to ``<work dir>/tmp``
        until the block ends.
        """
        path = self.subdir("tmp")
        saved = tempfile.tempdir, os.environ.get("TMPDIR")
        tempfile.tempdir = path
        os.environ["TMPDIR"] = path
        try:
            yield path
        finally:
            tempfile.tempdir = saved[0]
            if saved[1] is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved[1]

    def release(self):
        """Remove the work directory, then drop the lock."""
        if self._fd is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()
