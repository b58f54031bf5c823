# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the NaCl encrypted container."""

__all__ = []

from nacl.public import PrivateKey

from lp.services.crypto.interfaces import CryptoError
from lp.services.crypto.model import NaClEncryptedContainerBase
from lp.testing import TestCase


class FakeEncryptedContainer(NaClEncryptedContainerBase):
    def __init__(self, public_key_bytes, private_key_bytes):
        self._public_key_bytes = public_key_bytes
        self._private_key_bytes = private_key_bytes

    @property
    def public_key_bytes(self):
        return self._public_key_bytes

    @property
    def private_key_bytes(self):
        return self._private_key_bytes


class TestNaClEncryptedContainerBase(TestCase):
    def test_round_trip(self):
        key = PrivateKey.generate()
        container = FakeEncryptedContainer(None, bytes(key))
        self.assertTrue(container.can_encrypt)
        self.assertTrue(container.can_decrypt)
        sealed = container.encrypt(b"s3cret")
        self.assertNotIn(b"s3cret", "".join(sealed).encode())
        self.assertEqual(b"s3cret", container.decrypt(sealed))

    def test_public_key_only_encrypts(self):
        key = PrivateKey.generate()
        writer = FakeEncryptedContainer(bytes(key.public_key), None)
        self.assertTrue(writer.can_encrypt)
        self.assertFalse(writer.can_decrypt)
        sealed = writer.encrypt(b"s3cret")
        self.assertRaises(CryptoError, writer.decrypt, sealed)
        reader = FakeEncryptedContainer(None, bytes(key))
        self.assertEqual(b"s3cret", reader.decrypt(sealed))

    def test_unconfigured(self):
        container = FakeEncryptedContainer(None, None)
        self.assertFalse(container.can_encrypt)
        self.assertFalse(container.can_decrypt)
        self.assertRaises(CryptoError, container.encrypt, b"x")

    def test_wrong_key(self):
        sealed = FakeEncryptedContainer(
            None, bytes(PrivateKey.generate())
        ).encrypt(b"s3cret")
        other = FakeEncryptedContainer(None, bytes(PrivateKey.generate()))
        e = self.assertRaises(CryptoError, other.decrypt, sealed)
        self.assertNotIn("s3cret", str(e))

    def test_invalid_key(self):
        container = FakeEncryptedContainer(None, b"short")
        self.assertFalse(container.can_decrypt)
        self.assertRaises(CryptoError, container.encrypt, b"x")
