# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Where blobs have been pushed, so that later pushes can mount them."""

__all__ = [
    "IOCIPushedBlob",
    "IOCIPushedBlobSet",
]

from zope.interface import Attribute, Interface
from zope.schema import Datetime, Int, TextLine


class IOCIPushedBlob(Interface):
    """A blob known to be in a repository of a registry."""

    id = Int(title="ID", required=True, readonly=True)
    registry_url = TextLine(title="The registry's URL", readonly=True)
    repository = TextLine(title="The repository", readonly=True)
    digest = Attribute("The blob's `Digest`.")
    size = Int(title="The blob's size", required=False, readonly=True)
    date_pushed = Datetime(title="When it was last pushed", readonly=True)


class IOCIPushedBlobSet(Interface):
    """Recording and finding where blobs were pushed."""

    def record(registry_url, repository, digest, size=None):
        """Record that ``digest`` is in ``repository`` of the registry."""

    def findRepositories(registry_url, digest, exclude=None):
        """Repositories of the registry known to hold ``digest``.

        Most recently pushed first, leaving out ``exclude``.
        """

    def forget(registry_url, repository, digest):
        """Forget that ``digest`` is in ``repository`` (a mount failed)."""
