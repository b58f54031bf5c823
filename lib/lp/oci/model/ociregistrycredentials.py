# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Credentials for registry actions, their secret sealed at rest.

The keys come from the environment (Launchpad reads them from its
configuration, ``oci.registry_secrets_{public,private}_key``):

``LP_OCI_REGISTRY_SECRETS_PRIVATE_KEY``
    The base64 Curve25519 private key; or
    ``LP_OCI_REGISTRY_SECRETS_PRIVATE_KEY_FILE``, a file holding it.
    Only the hosts that push need it.
``LP_OCI_REGISTRY_SECRETS_PUBLIC_KEY``
    The base64 public key, enough to store credentials; derived from the
    private key when unset.
"""

__all__ = [
    "OCIRegistryCredentials",
    "OCIRegistryCredentialsSet",
    "OCIRegistrySecretsEncryptedContainer",
    "PRIVATE_KEY_ENV",
    "PRIVATE_KEY_FILE_ENV",
    "PUBLIC_KEY_ENV",
]

import base64
import binascii
import json
import os
from urllib.parse import urlsplit

from storm.databases.postgres import JSON
from storm.locals import Int, Reference, Unicode
from zope.component import getUtility
from zope.interface import implementer

from lp.oci.interfaces.ociregistrycredentials import (
    IOCIRegistryCredentials,
    IOCIRegistryCredentialsSet,
    OCIRegistryCredentialsNotOwner,
    OCIRegistryCredentialsURLError,
)
from lp.services.crypto.interfaces import CryptoError, IEncryptedContainer
from lp.services.crypto.model import NaClEncryptedContainerBase
from lp.services.database.interfaces import IPrimaryStore, IStore
from lp.services.database.stormbase import StormBase

PRIVATE_KEY_ENV = "LP_OCI_REGISTRY_SECRETS_PRIVATE_KEY"
PRIVATE_KEY_FILE_ENV = "LP_OCI_REGISTRY_SECRETS_PRIVATE_KEY_FILE"
PUBLIC_KEY_ENV = "LP_OCI_REGISTRY_SECRETS_PUBLIC_KEY"


def _decode_key(text, what):
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError(f"{what} is not base64") from None


@implementer(IEncryptedContainer)
class OCIRegistrySecretsEncryptedContainer(NaClEncryptedContainerBase):
    """The keys for OCI registry secrets, from the environment."""

    @property
    def public_key_bytes(self):
        value = os.environ.get(PUBLIC_KEY_ENV)
        return None if not value else _decode_key(value, PUBLIC_KEY_ENV)

    @property
    def private_key_bytes(self):
        value = os.environ.get(PRIVATE_KEY_ENV)
        if value:
            return _decode_key(value, PRIVATE_KEY_ENV)
        path = os.environ.get(PRIVATE_KEY_FILE_ENV)
        if not path:
            # Circular import.
            from lp.services.config import config

            path = config.oci.registry_secrets_private_key_file
        if not path:
            return None
        try:
            with open(path) as f:
                return _decode_key(f.read(), PRIVATE_KEY_FILE_ENV)
        except OSError as e:
            raise CryptoError(
                f"Cannot read {PRIVATE_KEY_FILE_ENV}: {e.strerror}"
            ) from None


def check_registry_url(url):
    """Refuse URLs that are not plain http(s) registry URLs.

    In particular a URL may not carry a username or password: those
    belong in the sealed credentials.
    """
    if not isinstance(url, str):
        raise OCIRegistryCredentialsURLError("The URL must be a string")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OCIRegistryCredentialsURLError(
            "The registry URL must be an http or https URL"
        )
    if parts.username is not None or parts.password is not None:
        raise OCIRegistryCredentialsURLError(
            "The registry URL may not contain credentials"
        )
    return url.rstrip("/")


@implementer(IOCIRegistryCredentials)
class OCIRegistryCredentials(StormBase):
    """See `IOCIRegistryCredentials`."""

    __storm_table__ = "OCIRegistryCredentials"

    id = Int(primary=True)
    owner_id = Int(name="owner", allow_none=False)
    owner = Reference(owner_id, "Person.id")
    url = Unicode(name="url", allow_none=False)
    _credentials = JSON(name="credentials", allow_none=True)

    def __init__(self, owner, url, credentials):
        super().__init__()
        self.owner = owner
        self.url = check_registry_url(url)
        self.setCredentials(credentials)

    def __repr__(self):
        # Never the credentials.
        return f"<OCIRegistryCredentials {self.id} for {self.url}>"

    def getCredentials(self):
        """See `IOCIRegistryCredentials`."""
        container = getUtility(IEncryptedContainer, "oci-registry-secrets")
        data = dict(self._credentials or {})
        encrypted = data.pop("credentials_encrypted", None)
        if encrypted is not None:
            try:
                secret = json.loads(
                    container.decrypt(
                        (encrypted["public_key"], encrypted["encrypted"])
                    ).decode("utf-8")
                )
            except (KeyError, TypeError, ValueError):
                raise CryptoError("Malformed encrypted credentials") from None
            data.update(secret)
        return data

    def setCredentials(self, value):
        """See `IOCIRegistryCredentials`."""
        value = dict(value or {})
        data = {}
        username = value.pop("username", None)
        if username:
            data["username"] = username
        if value:
            container = getUtility(IEncryptedContainer, "oci-registry-secrets")
            public_key, encrypted = container.encrypt(
                json.dumps(value, sort_keys=True).encode("utf-8")
            )
            data["credentials_encrypted"] = {
                "public_key": public_key,
                "encrypted": encrypted,
            }
        self._credentials = data

    @property
    def username(self):
        """See `IOCIRegistryCredentials`."""
        return (self._credentials or {}).get("username")

    def destroySelf(self):
        """See `IOCIRegistryCredentials`."""
        IStore(self).remove(self)


@implementer(IOCIRegistryCredentialsSet)
class OCIRegistryCredentialsSet:
    """See `IOCIRegistryCredentialsSet`."""

    def _checkOwner(self, registrant, owner, override_owner):
        # There are no teams here: only the owner registers credentials,
        # unless an administrator overrides it.
        if not override_owner and registrant != owner:
            raise OCIRegistryCredentialsNotOwner(
                f"{registrant.name} cannot create credentials owned by "
                f"{owner.name}."
            )

    def new(self, registrant, owner, url, credentials, override_owner=False):
        """See `IOCIRegistryCredentialsSet`."""
        self._checkOwner(registrant, owner, override_owner)
        credentials = OCIRegistryCredentials(owner, url, credentials)
        IPrimaryStore(OCIRegistryCredentials).add(credentials)
        return credentials

    def getOrCreate(
        self, registrant, owner, url, credentials, override_owner=False
    ):
        """See `IOCIRegistryCredentialsSet`."""
        self._checkOwner(registrant, owner, override_owner)
        url = check_registry_url(url)
        for existing in self.findByOwner(owner):
            if existing.url == url and existing.getCredentials() == dict(
                credentials or {}
            ):
                return existing
        return self.new(registrant, owner, url, credentials, override_owner)

    def findByOwner(self, owner):
        """See `IOCIRegistryCredentialsSet`."""
        return (
            IStore(OCIRegistryCredentials)
            .find(
                OCIRegistryCredentials,
                OCIRegistryCredentials.owner_id == owner.id,
            )
            .order_by(OCIRegistryCredentials.id)
        )

    def getByID(self, id):
        """See `IOCIRegistryCredentialsSet`."""
        return IStore(OCIRegistryCredentials).get(OCIRegistryCredentials, id)
