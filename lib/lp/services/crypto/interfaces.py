# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interface to data encrypted at rest using configured keys."""

__all__ = [
    "CryptoError",
    "IEncryptedContainer",
]

from zope.interface import Attribute, Interface


class CryptoError(Exception):
    """Encryption or decryption failed, or no key is configured.

    The message never contains the data, encrypted or not.
    """


class IEncryptedContainer(Interface):
    """Data encrypted at rest using configured keys."""

    can_encrypt = Attribute(
        "True iff this container has the configuration it needs to "
        "encrypt data."
    )

    def encrypt(data):
        """Encrypt a blob of data to a JSON-serialisable form.

        :param data: An unencrypted byte string to encrypt.
        :return: A tuple of (base64 public key, base64 encrypted data).
        :raises CryptoError: if encryption failed.
        """

    can_decrypt = Attribute(
        "True iff this container has the configuration it needs to "
        "decrypt data."
    )

    def decrypt(data):
        """Decrypt data that was encrypted by `encrypt`.

        :param data: A tuple as returned by `encrypt`.
        :return: The decrypted byte string.
        :raises CryptoError: if decryption failed.
        """
