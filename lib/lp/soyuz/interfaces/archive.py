# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Archive interfaces.

Builds are filed under their archive: uploads sit in
``<leaf>/<archive id>/<distribution name>``, as in Launchpad.
"""

__all__ = [
    "IArchive",
    "IArchiveSet",
]

from zope.interface import Attribute, Interface
from zope.schema import Bool, Choice, Int

from lp.soyuz.enums import ArchivePurpose


class IArchive(Interface):
    """An archive of a distribution."""

    id = Int(title="ID", required=True, readonly=True)
    distribution = Attribute("The `IDistribution` of this archive.")
    purpose = Choice(title="Purpose", vocabulary=ArchivePurpose, required=True)
    private = Bool(title="Private", required=True)
    is_main = Bool(title="Whether this is a distribution's main archive")


class IArchiveSet(Interface):
    """Creating and finding `IArchive`s."""

    def get(archive_id):
        """The `IArchive` with this id, or None."""

    def getByDistroPurpose(distribution, purpose):
        """The (oldest) `IArchive` of ``distribution`` with ``purpose``."""

    def new(purpose, distribution, private=False):
        """Create an `IArchive`."""
