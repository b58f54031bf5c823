# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for ownership by flock."""

__all__ = []

import os
import subprocess
import sys

from fixtures import TempDir
from testtools import TestCase

from ocitypes.flock import is_locked, remove_if_dead, try_lock

# Holds an exclusive flock on argv[1] until its stdin closes.
HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


class TestFlock(TestCase):
    def setUp(self):
        super().setUp()
        self.root = self.useFixture(TempDir()).path

    def makeDir(self, name, lock=True, mtime=None):
        path = os.path.join(self.root, name)
        os.mkdir(path)
        if lock:
            open(os.path.join(path, "lock"), "w").close()
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    def hold(self, path):
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.addCleanup(holder.wait)
        self.addCleanup(holder.stdin.close)
        self.assertEqual("locked\n", holder.stdout.readline())
        return holder

    def test_live_writer_keeps_its_directory(self):
        path = self.makeDir("live")
        lock = os.path.join(path, "lock")
        holder = self.hold(lock)
        self.assertTrue(is_locked(lock))
        fd = os.open(lock, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        self.assertFalse(try_lock(fd))
        self.assertFalse(remove_if_dead(path, "lock", now=0, grace=60))
        self.assertTrue(os.path.isdir(path))
        # Its writer dies: the kernel drops the lock.
        holder.stdin.close()
        holder.wait()
        self.assertFalse(is_locked(lock))
        self.assertTrue(remove_if_dead(path, "lock", now=0, grace=60))
        self.assertFalse(os.path.exists(path))

    def test_shared_locks_coexist(self):
        path = os.path.join(self.root, "f")
        open(path, "w").close()
        fds = [os.open(path, os.O_RDONLY) for _ in range(2)]
        for fd in fds:
            self.addCleanup(os.close, fd)
            self.assertTrue(try_lock(fd, shared=True))
        self.assertTrue(is_locked(path))

    def test_lockless_directory_needs_age_and_abandonment(self):
        path = self.makeDir("young", lock=False, mtime=1000)
        self.assertFalse(remove_if_dead(path, "lock", now=1030, grace=60))
        self.assertFalse(
            remove_if_dead(
                path, "lock", now=2000, grace=60, abandoned=lambda p: False
            )
        )
        self.assertTrue(os.path.isdir(path))
        self.assertTrue(remove_if_dead(path, "lock", now=2000, grace=60))
        self.assertFalse(os.path.exists(path))

    def test_missing_lock_file_is_not_locked(self):
        self.assertFalse(is_locked(os.path.join(self.root, "nothing")))
        self.assertFalse(
            remove_if_dead(os.path.join(self.root, "gone"), "lock", 0, 60)
        )
