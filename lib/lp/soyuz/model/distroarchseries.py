# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Distribution architecture series."""

__all__ = [
    "DistroArchSeries",
]

from storm.locals import Int, Reference, Unicode
from zope.interface import implementer

from lp.services.database.stormbase import StormBase
from lp.soyuz.interfaces.distroarchseries import IDistroArchSeries


@implementer(IDistroArchSeries)
class DistroArchSeries(StormBase):
    """See `IDistroArchSeries`."""

    __storm_table__ = "DistroArchSeries"

    id = Int(primary=True)
    distroseries_id = Int(name="distroseries", allow_none=False)
    distroseries = Reference(distroseries_id, "DistroSeries.id")
    processor_id = Int(name="processor", allow_none=False)
    processor = Reference(processor_id, "Processor.id")
    architecturetag = Unicode(name="architecturetag", allow_none=False)

    def __init__(self, distroseries, processor, architecturetag):
        super().__init__()
        self.distroseries = distroseries
        self.processor = processor
        self.architecturetag = architecturetag

    @property
    def display_name(self):
        """See `IDistroArchSeries`."""
        return "%s %s %s" % (
            self.distroseries.distribution.display_name,
            self.distroseries.name.capitalize(),
            self.architecturetag,
        )

    title = display_name

    def __repr__(self):
        return "<DistroArchSeries %s/%s/%s>" % (
            self.distroseries.distribution.name,
            self.distroseries.name,
            self.architecturetag,
        )
