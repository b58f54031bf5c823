# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the librarian's content-addressed storage."""

__all__ = []

import errno
import hashlib
import io
import os
import shutil
import stat
import tempfile
from unittest import mock

import transaction
from fixtures import MockPatch

from lp.services.librarian.interfaces import ContentMismatch
from lp.services.librarian.storage import (
    CHUNK_SIZE,
    IN_USE_LOCK,
    QUARANTINE,
    LibrarianStorage,
    VerifiedFile,
)
from lp.testing import TestCase


class ChunkCheckingReader:
    """A stream that fails if asked for everything at once."""

    def __init__(self, data, fail_after=None):
        self._stream = io.BytesIO(data)
        self.fail_after = fail_after
        self.sizes = []

    def read(self, size=-1):
        if size is None or size < 0 or size > CHUNK_SIZE:
            raise AssertionError(f"unbounded read({size})")
        self.sizes.append(size)
        if self.fail_after is not None and len(self.sizes) > self.fail_after:
            raise OSError("connection reset")
        return self._stream.read(size)


class TestLibrarianStorage(TestCase):
    def setUp(self):
        super().setUp()
        self.root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.root)
        self.storage = LibrarianStorage(self.root)

    def allFiles(self):
        """Every file under the root but the in-use lock."""
        return sorted(
            os.path.relpath(os.path.join(dirpath, name), self.root)
            for dirpath, _, names in os.walk(self.root)
            for name in names
            if os.path.join(dirpath, name)
            != os.path.join(self.root, IN_USE_LOCK)
        )

    def test_store_is_content_addressed(self):
        stored = self.storage.store(io.BytesIO(b"hello"))
        sha256 = hashlib.sha256(b"hello").hexdigest()
        self.assertEqual(sha256, stored.sha256)
        self.assertEqual(hashlib.sha1(b"hello").hexdigest(), stored.sha1)
        self.assertEqual(hashlib.md5(b"hello").hexdigest(), stored.md5)
        self.assertEqual(5, stored.size)
        self.assertEqual([f"{sha256[:2]}/{sha256}"], self.allFiles())
        self.assertTrue(self.storage.exists(sha256))
        with self.storage.open(sha256) as f:
            self.assertEqual(b"hello", f.read())

    def test_same_content_stored_once(self):
        self.storage.store(io.BytesIO(b"same"))
        self.storage.store(io.BytesIO(b"same"))
        self.assertEqual(1, len(self.allFiles()))

    def test_streams_in_bounded_chunks(self):
        data = os.urandom(CHUNK_SIZE * 2 + 17)
        reader = ChunkCheckingReader(data)
        stored = self.storage.store(reader)
        self.assertEqual(len(data), stored.size)
        self.assertEqual(hashlib.sha256(data).hexdigest(), stored.sha256)
        self.assertEqual([CHUNK_SIZE] * 4, reader.sizes)

    def test_expected_values_accepted(self):
        sha256 = hashlib.sha256(b"ok").hexdigest()
        stored = self.storage.store(
            io.BytesIO(b"ok"), expected_sha256=sha256, expected_size=2
        )
        self.assertEqual(sha256, stored.sha256)

    def test_sha256_mismatch_stores_nothing(self):
        wrong = hashlib.sha256(b"other").hexdigest()
        self.assertRaises(
            ContentMismatch,
            self.storage.store,
            io.BytesIO(b"data"),
            expected_sha256=wrong,
        )
        self.assertEqual([], self.allFiles())

    def test_short_content_stores_nothing(self):
        self.assertRaises(
            ContentMismatch,
            self.storage.store,
            io.BytesIO(b"data"),
            expected_size=5,
        )
        self.assertEqual([], self.allFiles())

    def test_long_content_stops_early(self):
        reader = ChunkCheckingReader(b"x" * (CHUNK_SIZE * 3))
        self.assertRaises(
            ContentMismatch, self.storage.store, reader, expected_size=10
        )
        self.assertEqual(1, len(reader.sizes))
        self.assertEqual([], self.allFiles())

    def test_failed_read_stores_nothing(self):
        reader = ChunkCheckingReader(b"x" * (CHUNK_SIZE * 3), fail_after=1)
        self.assertRaises(OSError, self.storage.store, reader)
        self.assertEqual([], self.allFiles())

    def test_text_refused(self):
        self.assertRaises(TypeError, self.storage.store, io.StringIO("text"))
        self.assertEqual([], self.allFiles())

    def test_malformed_sha256_refused(self):
        self.assertRaises(ValueError, self.storage.getPath, "../etc/passwd")
        self.assertRaises(
            ValueError,
            self.storage.store,
            io.BytesIO(b"x"),
            expected_sha256="ABC",
        )

    def test_remove(self):
        stored = self.storage.store(io.BytesIO(b"gone"))
        self.storage.remove(stored.sha256)
        self.assertFalse(self.storage.exists(stored.sha256))
        # Removing again is harmless.
        self.storage.remove(stored.sha256)

    def test_multi_chunk_hashes(self):
        # md5 runs in a helper thread past the first chunk.
        data = os.urandom(CHUNK_SIZE * 3 + 5)
        stored = self.storage.store(io.BytesIO(data))
        self.assertEqual(
            (
                hashlib.sha256(data).hexdigest(),
                hashlib.sha1(data).hexdigest(),
                hashlib.md5(data).hexdigest(),
                len(data),
            ),
            tuple(stored),
        )


class TestLibrarianStorageStorePath(TestCase):
    """`LibrarianStorage.storePath` takes a file by hard link."""

    def setUp(self):
        super().setUp()
        self.top = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.top)
        self.storage = LibrarianStorage(os.path.join(self.top, "librarian"))

    def writeFile(self, data, name="upload"):
        path = os.path.join(self.top, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_links_without_copying(self):
        data = os.urandom(CHUNK_SIZE * 2 + 3)
        path = self.writeFile(data)
        stored = self.storage.storePath(
            path,
            expected_sha256=hashlib.sha256(data).hexdigest(),
            expected_size=len(data),
        )
        self.assertEqual(
            (
                hashlib.sha256(data).hexdigest(),
                hashlib.sha1(data).hexdigest(),
                hashlib.md5(data).hexdigest(),
                len(data),
            ),
            tuple(stored),
        )
        # The same inode, under both names; the source stays.
        self.assertTrue(
            os.path.samefile(path, self.storage.getPath(stored.sha256))
        )
        self.assertEqual(2, os.stat(path).st_nlink)
        self.assertEqual([], os.listdir(self.storage.incoming))

    def test_mismatch_stores_nothing(self):
        path = self.writeFile(b"data")
        wrong = hashlib.sha256(b"other").hexdigest()
        self.assertRaises(
            ContentMismatch,
            self.storage.storePath,
            path,
            expected_sha256=wrong,
        )
        self.assertRaises(
            ContentMismatch, self.storage.storePath, path, expected_size=3
        )
        self.assertFalse(
            self.storage.exists(hashlib.sha256(b"data").hexdigest())
        )
        self.assertEqual([], os.listdir(self.storage.incoming))
        self.assertEqual(1, os.stat(path).st_nlink)

    def verifiedFile(self, path, data):
        return VerifiedFile.fromPath(
            path,
            hashlib.sha256(data).hexdigest(),
            hashlib.sha1(data).hexdigest(),
        )

    def test_verified_file_is_not_read(self):
        # A file whose writer computed its digests is linked after one
        # fstat, without a read; its md5 is unknown.
        data = os.urandom(CHUNK_SIZE + 5)
        path = self.writeFile(data)
        verified = self.verifiedFile(path, data)
        with mock.patch.object(
            self.storage, "_copy", side_effect=AssertionError("read")
        ):
            stored = self.storage.storePath(
                path,
                expected_sha256=verified.sha256,
                expected_size=len(data),
                verified=verified,
            )
        self.assertEqual(
            (verified.sha256, verified.sha1, None, len(data)), tuple(stored)
        )
        self.assertTrue(
            os.path.samefile(path, self.storage.getPath(stored.sha256))
        )
        self.assertEqual([], os.listdir(self.storage.incoming))

    def test_verified_file_changed_since_is_hashed(self):
        # Rewritten after it was verified (other mtime): the digests on
        # record are not trusted; the file is hashed and, here, refused.
        data = b"as downloaded"
        path = self.writeFile(data)
        verified = self.verifiedFile(path, data)
        with open(path, "r+b") as f:
            f.write(b"AS")
        os.utime(path, ns=(verified.mtime_ns + 1, verified.mtime_ns + 1))
        self.assertRaises(
            ContentMismatch,
            self.storage.storePath,
            path,
            expected_sha256=verified.sha256,
            verified=verified,
        )
        self.assertEqual([], os.listdir(self.storage.incoming))
        self.assertFalse(self.storage.exists(verified.sha256))

    def test_verified_file_replaced_is_hashed(self):
        # Another file under the name (another inode) is hashed.
        data = b"first"
        path = self.writeFile(data)
        verified = self.verifiedFile(path, data)
        os.unlink(path)
        self.writeFile(b"other")
        stored = self.storage.storePath(path, verified=verified)
        self.assertEqual(hashlib.sha256(b"other").hexdigest(), stored.sha256)
        self.assertEqual(hashlib.md5(b"other").hexdigest(), stored.md5)

    def test_verified_digests_still_checked(self):
        # The record's digests must agree with what the caller expects.
        data = b"content"
        path = self.writeFile(data)
        verified = self.verifiedFile(path, data)
        self.assertRaises(
            ContentMismatch,
            self.storage.storePath,
            path,
            expected_sha256=hashlib.sha256(b"other").hexdigest(),
            verified=verified,
        )
        self.assertRaises(
            ContentMismatch,
            self.storage.storePath,
            path,
            expected_size=len(data) + 1,
            verified=verified,
        )
        self.assertEqual([], os.listdir(self.storage.incoming))

    def test_copies_across_file_systems(self):
        path = self.writeFile(b"elsewhere")

        def no_link(src, dst, **kwargs):
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        with mock.patch("os.link", no_link):
            stored = self.storage.storePath(path, expected_size=9)
        stored_path = self.storage.getPath(stored.sha256)
        self.assertFalse(os.path.samefile(path, stored_path))
        with open(stored_path, "rb") as f:
            self.assertEqual(b"elsewhere", f.read())
        self.assertEqual([], os.listdir(self.storage.incoming))

    def test_same_content_twice(self):
        first = self.writeFile(b"twice", name="first")
        second = self.writeFile(b"twice", name="second")
        self.storage.storePath(first)
        stored = self.storage.storePath(second)
        self.assertTrue(
            os.path.samefile(second, self.storage.getPath(stored.sha256))
        )
        # Storing the stored file itself is harmless.
        self.storage.storePath(self.storage.getPath(stored.sha256))
        self.assertEqual([], os.listdir(self.storage.incoming))
        with self.storage.open(stored.sha256) as f:
            self.assertEqual(b"twice", f.read())


class TestLibrarianStorageIntegrity(TestCase):
    """Verification on reuse, quarantine and the in-use lock."""

    def setUp(self):
        super().setUp()
        self.root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.root)
        self.storage = LibrarianStorage(self.root)
        self.addCleanup(transaction.abort)

    def test_intact(self):
        stored = self.storage.store(io.BytesIO(b"intact"))
        self.assertIsNone(self.storage.checkContent(stored.sha256, 6))
        self.assertTrue(self.storage.isIntact(stored.sha256, 6))

    def test_flipped_byte_is_quarantined(self):
        stored = self.storage.store(io.BytesIO(b"content"))
        path = self.storage.getPath(stored.sha256)
        with open(path, "r+b") as f:
            f.write(b"C")
        self.assertIn("has sha256", self.storage.checkContent(stored.sha256))
        with self.assertLogs("lp.services.librarian", "WARNING") as logs:
            self.assertFalse(self.storage.isIntact(stored.sha256, 7))
        self.assertIn("quarantined " + stored.sha256, logs.output[0])
        self.assertFalse(os.path.exists(path))
        (kept,) = os.listdir(os.path.join(self.root, QUARANTINE))
        self.assertTrue(kept.startswith(stored.sha256))
        # Storing the content again puts good bytes back.
        self.storage.store(io.BytesIO(b"content"))
        self.assertTrue(self.storage.isIntact(stored.sha256, 7))

    def test_wrong_size_is_quarantined(self):
        stored = self.storage.store(io.BytesIO(b"content"))
        os.truncate(self.storage.getPath(stored.sha256), 3)
        self.assertIn(
            "is 3 bytes, expected 7",
            self.storage.checkContent(stored.sha256, 7),
        )
        with self.assertLogs("lp.services.librarian", "WARNING"):
            self.assertFalse(self.storage.isIntact(stored.sha256, 7))
        self.assertFalse(self.storage.exists(stored.sha256))

    def test_missing(self):
        sha256 = hashlib.sha256(b"never").hexdigest()
        self.assertIn("is missing", self.storage.checkContent(sha256))
        with self.assertLogs("lp.services.librarian", "WARNING"):
            self.assertFalse(self.storage.isIntact(sha256))

    def test_change_after_verification_is_noticed(self):
        # The per-process memo of verified content is keyed by inode,
        # size, mtime and ctime: a write in place invalidates it.
        stored = self.storage.store(io.BytesIO(b"content"))
        self.assertTrue(self.storage.isIntact(stored.sha256, 7))
        with open(self.storage.getPath(stored.sha256), "r+b") as f:
            f.write(b"X")
        with self.assertLogs("lp.services.librarian", "WARNING"):
            self.assertFalse(self.storage.isIntact(stored.sha256, 7))

    def test_store_holds_in_use_lock_until_transaction_ends(self):
        with self.storage.exclusive() as idle:
            self.assertTrue(idle)
        self.storage.store(io.BytesIO(b"pending"))
        with self.storage.exclusive() as idle:
            self.assertFalse(idle)
        transaction.abort()
        with self.storage.exclusive() as idle:
            self.assertTrue(idle)
        self.storage.store(io.BytesIO(b"pending"))
        transaction.commit()
        with self.storage.exclusive() as idle:
            self.assertTrue(idle)


class TestLibrarianStorageSyncAtCommit(TestCase):
    """`LibrarianStorage.syncAtCommit`: one batch of fsyncs at commit."""

    def setUp(self):
        super().setUp()
        self.top = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.top)
        self.storage = LibrarianStorage(os.path.join(self.top, "librarian"))
        self.addCleanup(transaction.abort)
        transaction.begin()
        # (inode, is a directory) of every fsync, in order.
        self.synced = []
        real_fsync = os.fsync

        def recording_fsync(fd):
            st = os.fstat(fd)
            self.synced.append((st.st_ino, stat.S_ISDIR(st.st_mode)))
            return real_fsync(fd)

        self.useFixture(MockPatch("os.fsync", side_effect=recording_fsync))

    def inode(self, path):
        return os.stat(path).st_ino

    def storeThree(self):
        """Store three new contents, by copy and by link."""
        stored = [self.storage.store(io.BytesIO(b"one"))]
        for data in (b"two", b"three"):
            path = os.path.join(self.top, data.decode())
            with open(path, "wb") as f:
                f.write(data)
            stored.append(self.storage.storePath(path))
        return [self.storage.getPath(s.sha256) for s in stored]

    def test_each_store_synced_at_once_outside(self):
        paths = self.storeThree()
        self.assertEqual(6, len(self.synced))
        self.assertEqual(
            {self.inode(path) for path in paths},
            {inode for inode, is_dir in self.synced if not is_dir},
        )

    def test_files_then_directories_synced_at_commit(self):
        with self.storage.syncAtCommit():
            paths = self.storeThree()
        self.assertEqual([], self.synced)
        transaction.commit()
        files = {self.inode(path) for path in paths}
        directories = {self.inode(os.path.dirname(path)) for path in paths}
        # Each file once, then each directory once.
        self.assertEqual(
            sorted((inode, False) for inode in files),
            sorted(self.synced[: len(files)]),
        )
        self.assertEqual(
            sorted((inode, True) for inode in directories),
            sorted(self.synced[len(files) :]),
        )
        # The next transaction syncs nothing more.
        transaction.commit()
        self.assertEqual(len(files) + len(directories), len(self.synced))

    def test_failed_sync_fails_the_commit(self):
        with self.storage.syncAtCommit():
            self.storeThree()
        self.useFixture(
            MockPatch("os.fsync", side_effect=OSError(errno.EIO, "I/O"))
        )
        self.assertRaises(OSError, transaction.commit)

    def test_abort_syncs_nothing(self):
        with self.storage.syncAtCommit():
            self.storeThree()
        transaction.abort()
        transaction.commit()
        self.assertEqual([], self.synced)

    def test_content_already_there_synced_before_it_is_replaced(self):
        # Stored content may have committed rows: it is only replaced by
        # bytes already on disk.
        stored = self.storage.store(io.BytesIO(b"kept"))
        transaction.commit()
        del self.synced[:]
        with self.storage.syncAtCommit():
            self.storage.store(io.BytesIO(b"kept"))
            self.assertEqual(
                [
                    (self.inode(self.storage.getPath(stored.sha256)), False),
                    (
                        self.inode(
                            os.path.dirname(
                                self.storage.getPath(stored.sha256)
                            )
                        ),
                        True,
                    ),
                ],
                self.synced,
            )
