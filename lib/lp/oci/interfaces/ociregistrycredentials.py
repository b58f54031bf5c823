# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interfaces for handling credentials for OCI registry actions."""

__all__ = [
    "IOCIRegistryCredentials",
    "IOCIRegistryCredentialsSet",
    "OCIRegistryCredentialsNotOwner",
    "OCIRegistryCredentialsURLError",
]

from zope.interface import Attribute, Interface
from zope.schema import Int, TextLine


class OCIRegistryCredentialsNotOwner(Exception):
    """The registrant is not the owner of the credentials."""


class OCIRegistryCredentialsURLError(ValueError):
    """The registry URL is not one credentials can be kept for."""


class IOCIRegistryCredentials(Interface):
    """Credentials for registry actions.

    The secret part is sealed with the configured public key; only
    `getCredentials` (which needs the private key) returns it.
    """

    id = Int(title="ID", required=True, readonly=True)
    owner = Attribute("The owner of these credentials (an `IPerson`).")
    url = TextLine(
        title="The registry URL",
        description="The URL of the registry for these credentials.",
        required=True,
    )
    username = TextLine(
        title="Username",
        description="The username for the registry, if any.",
        required=False,
        readonly=True,
    )

    def getCredentials():
        """The credentials in clear, as a dict (``username``, ``password``).

        :raises CryptoError: if they cannot be decrypted.
        """

    def setCredentials(value):
        """Seal and keep ``value`` (a dict; ``username`` stays in clear).

        :raises CryptoError: if no public key is configured.
        """

    def destroySelf():
        """Delete these credentials."""


class IOCIRegistryCredentialsSet(Interface):
    """A utility to create and access OCI registry credentials."""

    def new(registrant, owner, url, credentials, override_owner=False):
        """Create an `IOCIRegistryCredentials`."""

    def getOrCreate(registrant, owner, url, credentials, override_owner=False):
        """Get an `IOCIRegistryCredentials` that matches the arguments,
        or create one if none does."""

    def findByOwner(owner):
        """Find the credentials owned by ``owner``."""

    def getByID(id):
        """The credentials with this id, or None."""
