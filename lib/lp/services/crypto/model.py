# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A container for data encrypted at rest using configured keys.

As Launchpad's: a NaCl sealed box (Curve25519, XSalsa20-Poly1305), so
that a host holding only the public key can encrypt and only one holding
the private key can decrypt.
"""

__all__ = [
    "NaClEncryptedContainerBase",
]

import base64
import binascii

from nacl.exceptions import CryptoError as NaClCryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from zope.interface import implementer

from lp.services.crypto.interfaces import CryptoError, IEncryptedContainer


def _b64(data):
    return base64.b64encode(data).decode("ascii")


@implementer(IEncryptedContainer)
class NaClEncryptedContainerBase:
    """A container that can encrypt and decrypt data.

    Subclasses say where their keys come from: `public_key_bytes` and
    `private_key_bytes` return raw keys, or None if not configured.
    """

    @property
    def public_key_bytes(self):
        raise NotImplementedError

    @property
    def private_key_bytes(self):
        raise NotImplementedError

    @property
    def public_key(self):
        """The public key, as a `nacl.public.PublicKey`, or None."""
        key = self.public_key_bytes
        if key is None:
            private_key = self.private_key
            return None if private_key is None else private_key.public_key
        try:
            return PublicKey(key)
        except (NaClCryptoError, TypeError, ValueError):
            raise CryptoError("Invalid public key") from None

    @property
    def private_key(self):
        """The private key, as a `nacl.public.PrivateKey`, or None."""
        key = self.private_key_bytes
        if key is None:
            return None
        try:
            return PrivateKey(key)
        except (NaClCryptoError, TypeError, ValueError):
            raise CryptoError("Invalid private key") from None

    @property
    def can_encrypt(self):
        """See `IEncryptedContainer`."""
        try:
            return self.public_key is not None
        except CryptoError:
            return False

    def encrypt(self, data):
        """See `IEncryptedContainer`."""
        public_key = self.public_key
        if public_key is None:
            raise CryptoError("No public key configured")
        try:
            encrypted = SealedBox(public_key).encrypt(data)
        except NaClCryptoError:
            raise CryptoError("Encryption failed") from None
        return _b64(bytes(public_key)), _b64(encrypted)

    @property
    def can_decrypt(self):
        """See `IEncryptedContainer`."""
        try:
            return self.private_key is not None
        except CryptoError:
            return False

    def decrypt(self, data):
        """See `IEncryptedContainer`."""
        public_key_b64, encrypted_b64 = data
        private_key = self.private_key
        if private_key is None:
            raise CryptoError("No private key configured")
        try:
            public_key_bytes = base64.b64decode(public_key_b64, validate=True)
            encrypted = base64.b64decode(encrypted_b64, validate=True)
        except (TypeError, binascii.Error):
            raise CryptoError("Encrypted data is not base64") from None
        if public_key_bytes != bytes(private_key.public_key):
            raise CryptoError(
                "Encrypted with a public key that does not match the "
                "configured private key"
            )
        try:
            return SealedBox(private_key).decrypt(encrypted)
        except NaClCryptoError:
            raise CryptoError("Decryption failed") from None
