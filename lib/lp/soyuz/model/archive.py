# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Archives."""

__all__ = [
    "Archive",
    "ArchiveSet",
]

from storm.locals import Bool, Int, Reference
from zope.interface import implementer

from lp.services.database.enumcol import DBEnum
from lp.services.database.interfaces import IPrimaryStore, IStore
from lp.services.database.stormbase import StormBase
from lp.soyuz.enums import ArchivePurpose
from lp.soyuz.interfaces.archive import IArchive, IArchiveSet


@implementer(IArchive)
class Archive(StormBase):
    """See `IArchive`."""

    __storm_table__ = "Archive"

    id = Int(primary=True)
    distribution_id = Int(name="distribution", allow_none=False)
    distribution = Reference(distribution_id, "Distribution.id")
    purpose = DBEnum(name="purpose", enum=ArchivePurpose, allow_none=False)
    private = Bool(name="private", allow_none=False)

    def __init__(self, distribution, purpose, private=False):
        super().__init__()
        self.distribution = distribution
        self.purpose = purpose
        self.private = private

    def __repr__(self):
        return "<Archive %s %s %s>" % (
            self.id,
            self.distribution.name,
            self.purpose.name,
        )

    @property
    def is_main(self):
        """See `IArchive`."""
        return self.purpose == ArchivePurpose.PRIMARY


@implementer(IArchiveSet)
class ArchiveSet:
    """See `IArchiveSet`."""

    def get(self, archive_id):
        """See `IArchiveSet`."""
        return IStore(Archive).get(Archive, archive_id)

    def getByDistroPurpose(self, distribution, purpose):
        """See `IArchiveSet`."""
        return (
            IStore(Archive)
            .find(
                Archive,
                Archive.distribution == distribution,
                Archive.purpose == purpose,
            )
            .order_by(Archive.id)
            .first()
        )

    def new(self, purpose, distribution, private=False):
        """See `IArchiveSet`."""
        archive = Archive(distribution, purpose, private=private)
        IPrimaryStore(Archive).add(archive)
        return archive
