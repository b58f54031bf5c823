# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Distributions."""

__all__ = [
    "Distribution",
    "DistributionSet",
]

from storm.locals import Int, Store, Unicode
from zope.component import getUtility
from zope.interface import implementer

from lp.registry.interfaces.distribution import (
    IDistribution,
    IDistributionSet,
)
from lp.registry.interfaces.distroseries import NoSuchDistroSeries
from lp.services.database.interfaces import IPrimaryStore, IStore
from lp.services.database.stormbase import StormBase
from lp.soyuz.enums import ArchivePurpose
from lp.soyuz.interfaces.archive import IArchiveSet


@implementer(IDistribution)
class Distribution(StormBase):
    """See `IDistribution`."""

    __storm_table__ = "Distribution"

    id = Int(primary=True)
    name = Unicode(name="name", allow_none=False)
    display_name = Unicode(name="displayname", allow_none=False)

    def __init__(self, name, display_name):
        super().__init__()
        self.name = name
        self.display_name = display_name

    def __repr__(self):
        return f"<Distribution {self.name!r}>"

    @property
    def main_archive(self):
        """See `IDistribution`."""
        return getUtility(IArchiveSet).getByDistroPurpose(
            self, ArchivePurpose.PRIMARY
        )

    @property
    def series(self):
        """See `IDistribution`."""
        # Circular import.
        from lp.registry.model.distroseries import DistroSeries

        return (
            Store.of(self)
            .find(DistroSeries, DistroSeries.distribution == self)
            .order_by(DistroSeries.name)
        )

    def getSeries(self, name):
        """See `IDistribution`."""
        # Circular import.
        from lp.registry.model.distroseries import DistroSeries

        series = (
            Store.of(self)
            .find(
                DistroSeries,
                DistroSeries.distribution == self,
                DistroSeries.name == name,
            )
            .one()
        )
        if series is None:
            raise NoSuchDistroSeries(name)
        return series

    def newSeries(self, name):
        """See `IDistribution`."""
        # Circular import.
        from lp.registry.model.distroseries import DistroSeries

        series = DistroSeries(self, name)
        Store.of(self).add(series)
        return series


@implementer(IDistributionSet)
class DistributionSet:
    """See `IDistributionSet`."""

    def get(self, distributionid):
        """See `IDistributionSet`."""
        return IStore(Distribution).get(Distribution, distributionid)

    def getByName(self, name):
        """See `IDistributionSet`."""
        return IStore(Distribution).find(Distribution, name=name).one()

    def new(self, name, display_name):
        """See `IDistributionSet`."""
        distribution = Distribution(name, display_name)
        IPrimaryStore(Distribution).add(distribution)
        getUtility(IArchiveSet).new(
            purpose=ArchivePurpose.PRIMARY, distribution=distribution
        )
        return distribution
