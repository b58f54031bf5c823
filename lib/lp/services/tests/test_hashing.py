# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `lp.services.hashing`."""

__all__ = []

import hashlib
import os
import threading

from lp.services.hashing import HashInThread
from lp.testing import TestCase


def _hash_threads():
    return [t for t in threading.enumerate() if t.name.startswith("hash-")]


class TestHashInThread(TestCase):
    def test_digest_of_many_chunks(self):
        chunks = [os.urandom(n) for n in (0, 1, 65536, 1 << 20, 7)]
        hasher = HashInThread("sha1")
        try:
            for chunk in chunks:
                hasher.update(chunk)
            self.assertNotEqual([], _hash_threads())
            self.assertEqual(
                hashlib.sha1(b"".join(chunks)).hexdigest(),
                hasher.hexdigest(),
            )
        finally:
            hasher.close()
        self.assertEqual([], _hash_threads())

    def test_one_chunk_starts_no_thread(self):
        hasher = HashInThread("md5")
        hasher.update(b"small")
        self.assertEqual([], _hash_threads())
        self.assertEqual(hashlib.md5(b"small").hexdigest(), hasher.hexdigest())
        hasher.close()

    def test_close_is_repeatable_and_safe_unused(self):
        hasher = HashInThread("sha256")
        hasher.close()
        hasher.close()
        self.assertEqual(hashlib.sha256().hexdigest(), hasher.hexdigest())
