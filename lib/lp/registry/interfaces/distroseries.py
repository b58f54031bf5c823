# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Distribution series interfaces."""

__all__ = [
    "IDistroSeries",
    "NoSuchDistroSeries",
]

from zope.interface import Attribute, Interface
from zope.schema import Int, TextLine

from lp.app.errors import NotFoundError


class NoSuchDistroSeries(NotFoundError):
    """The distribution has no series with this name."""


class IDistroSeries(Interface):
    """A series of a distribution (e.g. Ubuntu noble)."""

    id = Int(title="ID", required=True, readonly=True)
    distribution = Attribute("The `IDistribution` of this series.")
    name = TextLine(title="Name", required=True, readonly=True)
    architectures = Attribute("The series' `IDistroArchSeries`, by tag.")

    def getDistroArchSeries(archtag):
        """The `IDistroArchSeries` with this architecture tag.

        :raises NotFoundError: if there is none.
        """

    def getDistroArchSeriesByProcessor(processor):
        """The `IDistroArchSeries` for this `IProcessor`, or None."""

    def newArch(architecturetag, processor):
        """Create an `IDistroArchSeries` of this series."""
