# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the builder's file cache."""

__all__ = []

import errno
import hashlib
import os
from unittest import mock

from fixtures import TempDir
from testtools import TestCase

from lpbuildd.filecache import FileCache, is_valid_sha1


def make_file(directory, name, content):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(content)
    return path


def sha1_hex(content):
    return hashlib.sha1(content).hexdigest()


class TestIsValidSha1(TestCase):
    def test_valid(self):
        self.assertTrue(is_valid_sha1("0" * 40))
        self.assertTrue(is_valid_sha1(sha1_hex(b"x")))

    def test_invalid(self):
        for value in (
            "0" * 39,
            "0" * 41,
            "A" * 40,
            "g" * 40,
            "0" * 40 + "\n",
            "../" + "0" * 37,
            b"0" * 40,
            None,
        ):
            self.assertFalse(is_valid_sha1(value), repr(value))


class TestFileCache(TestCase):
    def setUp(self):
        super().setUp()
        self.cache_dir = self.useFixture(TempDir()).path
        self.work_dir = self.useFixture(TempDir()).path
        self.cache = FileCache(self.cache_dir)

    def test_storeFile_computes_sha1_and_hardlinks(self):
        path = make_file(self.work_dir, "a", b"content")
        sha1 = self.cache.storeFile(path)
        self.assertEqual(sha1_hex(b"content"), sha1)
        self.assertEqual([sha1], os.listdir(self.cache_dir))
        self.assertTrue(
            os.path.samefile(path, os.path.join(self.cache_dir, sha1))
        )

    def test_storeFile_twice_is_harmless(self):
        path = make_file(self.work_dir, "a", b"content")
        other = make_file(self.work_dir, "b", b"content")
        sha1 = self.cache.storeFile(path)
        self.assertEqual(sha1, self.cache.storeFile(path))
        self.assertEqual(sha1, self.cache.storeFile(other))
        self.assertEqual([sha1], os.listdir(self.cache_dir))

    def test_storeFile_copies_across_file_systems(self):
        path = make_file(self.work_dir, "a", b"x" * 3000000)
        with mock.patch(
            "os.link", side_effect=OSError(errno.EXDEV, "cross-device")
        ):
            sha1 = self.cache.storeFile(path)
        self.assertEqual(sha1_hex(b"x" * 3000000), sha1)
        self.assertFalse(
            os.path.samefile(path, os.path.join(self.cache_dir, sha1))
        )
        self.assertEqual([sha1], os.listdir(self.cache_dir))

    def test_storeFile_trusts_given_sha1(self):
        path = make_file(self.work_dir, "a", b"content")
        with mock.patch("lpbuildd.filecache.sha1_of_path") as sha1_of_path:
            sha1 = self.cache.storeFile(path, sha1=sha1_hex(b"content"))
        self.assertEqual(0, sha1_of_path.call_count)
        self.assertEqual(sha1_hex(b"content"), sha1)

    def test_storeFile_verify_mismatch_leaves_nothing(self):
        path = make_file(self.work_dir, "a", b"content")
        self.assertRaises(
            ValueError,
            self.cache.storeFile,
            path,
            sha1="0" * 40,
            verify=True,
        )
        self.assertEqual([], os.listdir(self.cache_dir))

    def test_storeFile_rejects_malformed_sha1(self):
        path = make_file(self.work_dir, "a", b"content")
        self.assertRaises(
            ValueError, self.cache.storeFile, path, sha1="../../etc"
        )

    def test_open_refuses_symlinks_and_bad_names(self):
        target = make_file(self.work_dir, "secret", b"secret")
        os.symlink(target, os.path.join(self.cache_dir, "1" * 40))
        os.mkdir(os.path.join(self.cache_dir, "2" * 40))
        self.assertIsNone(self.cache.open("1" * 40))
        self.assertIsNone(self.cache.open("2" * 40))
        self.assertIsNone(self.cache.open("../" + "0" * 37))
        self.assertIsNone(self.cache.open("3" * 40))
