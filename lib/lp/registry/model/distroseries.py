# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Distribution series."""

__all__ = [
    "DistroSeries",
]

from storm.locals import Int, Reference, Store, Unicode
from zope.interface import implementer

from lp.app.errors import NotFoundError
from lp.registry.interfaces.distroseries import IDistroSeries
from lp.services.database.stormbase import StormBase


@implementer(IDistroSeries)
class DistroSeries(StormBase):
    """See `IDistroSeries`."""

    __storm_table__ = "DistroSeries"

    id = Int(primary=True)
    distribution_id = Int(name="distribution", allow_none=False)
    distribution = Reference(distribution_id, "Distribution.id")
    name = Unicode(name="name", allow_none=False)

    def __init__(self, distribution, name):
        super().__init__()
        self.distribution = distribution
        self.name = name

    def __repr__(self):
        return f"<DistroSeries {self.distribution.name}/{self.name}>"

    def _findArchitectures(self, *conditions):
        # Circular import.
        from lp.soyuz.model.distroarchseries import DistroArchSeries

        return Store.of(self).find(
            DistroArchSeries,
            DistroArchSeries.distroseries == self,
            *conditions,
        )

    @property
    def architectures(self):
        """See `IDistroSeries`."""
        # Circular import.
        from lp.soyuz.model.distroarchseries import DistroArchSeries

        return self._findArchitectures().order_by(
            DistroArchSeries.architecturetag
        )

    def getDistroArchSeries(self, archtag):
        """See `IDistroSeries`."""
        # Circular import.
        from lp.soyuz.model.distroarchseries import DistroArchSeries

        das = self._findArchitectures(
            DistroArchSeries.architecturetag == archtag
        ).one()
        if das is None:
            raise NotFoundError(
                f"Unknown architecture {archtag} for {self.name}"
            )
        return das

    def getDistroArchSeriesByProcessor(self, processor):
        """See `IDistroSeries`."""
        # Circular import.
        from lp.soyuz.model.distroarchseries import DistroArchSeries

        return (
            self._findArchitectures(DistroArchSeries.processor == processor)
            .order_by(DistroArchSeries.id)
            .first()
        )

    def newArch(self, architecturetag, processor):
        """See `IDistroSeries`."""
        # Circular import.
        from lp.soyuz.model.distroarchseries import DistroArchSeries

        das = DistroArchSeries(self, processor, architecturetag)
        Store.of(self).add(das)
        return das
