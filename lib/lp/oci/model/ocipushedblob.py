# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Where blobs have been pushed, so that later pushes can mount them."""

__all__ = [
    "OCIPushedBlob",
    "OCIPushedBlobSet",
]

from datetime import timezone

from storm.locals import DateTime, Desc, Int, Unicode
from zope.interface import implementer

from lp.oci.interfaces.ocipushedblob import IOCIPushedBlob, IOCIPushedBlobSet
from lp.services.database.constants import utc_now
from lp.services.database.interfaces import IPrimaryStore, IStore
from lp.services.database.stormbase import StormBase
from ocitypes.digest import Digest


@implementer(IOCIPushedBlob)
class OCIPushedBlob(StormBase):
    """See `IOCIPushedBlob`."""

    __storm_table__ = "OCIPushedBlob"

    id = Int(primary=True)
    registry_url = Unicode(allow_none=False)
    repository = Unicode(allow_none=False)
    _digest = Unicode(name="digest", allow_none=False)
    size = Int()
    date_pushed = DateTime(allow_none=False, tzinfo=timezone.utc)

    def __init__(self, registry_url, repository, digest, size=None):
        super().__init__()
        self.registry_url = registry_url
        self.repository = repository
        self._digest = str(digest)
        self.size = size
        self.date_pushed = utc_now()

    @property
    def digest(self):
        """See `IOCIPushedBlob`."""
        return Digest.parse(self._digest)


@implementer(IOCIPushedBlobSet)
class OCIPushedBlobSet:
    """See `IOCIPushedBlobSet`."""

    def _find(self, registry_url, repository, digest):
        return IStore(OCIPushedBlob).find(
            OCIPushedBlob,
            OCIPushedBlob.registry_url == registry_url,
            OCIPushedBlob.repository == repository,
            OCIPushedBlob._digest == str(digest),
        )

    def record(self, registry_url, repository, digest, size=None):
        """See `IOCIPushedBlobSet`."""
        existing = self._find(registry_url, repository, digest).one()
        if existing is not None:
            existing.date_pushed = utc_now()
            if size is not None:
                existing.size = size
            return existing
        pushed = OCIPushedBlob(registry_url, repository, digest, size)
        IPrimaryStore(OCIPushedBlob).add(pushed)
        return pushed

    def findRepositories(self, registry_url, digest, exclude=None):
        """See `IOCIPushedBlobSet`."""
        clauses = [
            OCIPushedBlob.registry_url == registry_url,
            OCIPushedBlob._digest == str(digest),
        ]
        if exclude is not None:
            clauses.append(OCIPushedBlob.repository != exclude)
        rows = (
            IStore(OCIPushedBlob)
            .find(OCIPushedBlob, *clauses)
            .order_by(Desc(OCIPushedBlob.date_pushed), Desc(OCIPushedBlob.id))
        )
        return [row.repository for row in rows]

    def forget(self, registry_url, repository, digest):
        """See `IOCIPushedBlobSet`."""
        self._find(registry_url, repository, digest).remove()
