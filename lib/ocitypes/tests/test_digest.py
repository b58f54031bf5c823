# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the `Digest` value type."""

__all__ = []

import hashlib
import pickle

from testtools import TestCase

from ocitypes.digest import Digest
from ocitypes.testing import MALFORMED_DIGESTS

HEX = hashlib.sha256(b"x").hexdigest()


class TestDigest(TestCase):
    def test_parse(self):
        digest = Digest.parse("sha256:" + HEX)
        self.assertEqual("sha256", digest.algorithm)
        self.assertEqual(HEX, digest.hex)
        self.assertEqual("sha256:" + HEX, str(digest))
        self.assertEqual("Digest('sha256:%s')" % HEX, repr(digest))

    def test_sha512(self):
        hex = hashlib.sha512(b"x").hexdigest()
        self.assertEqual("sha512", Digest.parse("sha512:" + hex).algorithm)

    def test_malformed(self):
        for text in MALFORMED_DIGESTS + (None, 1, b"sha256:" + HEX.encode()):
            self.assertRaises(ValueError, Digest.parse, text)

    def test_constructor_checks(self):
        self.assertRaises(ValueError, Digest, "md5", "0" * 32)
        self.assertRaises(ValueError, Digest, "sha256", HEX.upper())
        self.assertRaises(ValueError, Digest, "sha256", HEX[:-1])

    def test_from_legacy(self):
        self.assertEqual(
            Digest.parse("sha256:" + HEX), Digest.from_legacy(HEX)
        )
        self.assertEqual(
            Digest.parse("sha256:" + HEX), Digest.from_legacy("sha256:" + HEX)
        )
        self.assertRaises(ValueError, Digest.from_legacy, "xyz")

    def test_value_semantics(self):
        a = Digest.parse("sha256:" + HEX)
        b = Digest("sha256", HEX)
        self.assertEqual(a, b)
        self.assertEqual(hash(a), hash(b))
        self.assertEqual({a}, {b})
        self.assertNotEqual(a, "sha256:" + HEX)
        self.assertEqual(a, pickle.loads(pickle.dumps(a)))
        self.assertTrue(Digest("sha256", "0" * 64) < a)

    def test_immutable(self):
        digest = Digest("sha256", HEX)
        self.assertRaises(AttributeError, setattr, digest, "hex", "0" * 64)

    def test_of_bytes(self):
        self.assertEqual(Digest("sha256", HEX), Digest.of_bytes(b"x"))
        self.assertEqual("sha256", Digest.of_bytes(b"").hasher().name)
