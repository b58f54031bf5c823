# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Distribution interfaces."""

__all__ = [
    "IDistribution",
    "IDistributionSet",
]

from zope.interface import Attribute, Interface
from zope.schema import Int, TextLine


class IDistribution(Interface):
    """A distribution (e.g. Ubuntu)."""

    id = Int(title="ID", required=True, readonly=True)
    name = TextLine(title="Name", required=True, readonly=True)
    display_name = TextLine(title="Display Name", required=True)
    main_archive = Attribute("The distribution's primary `IArchive`.")
    series = Attribute("The distribution's `IDistroSeries`, by name.")

    def getSeries(name):
        """The `IDistroSeries` with this name.

        :raises NoSuchDistroSeries: if there is none.
        """

    def newSeries(name):
        """Create an `IDistroSeries` of this distribution."""


class IDistributionSet(Interface):
    """Creating and finding `IDistribution`s."""

    def get(distributionid):
        """The `IDistribution` with this id, or None."""

    def getByName(name):
        """The `IDistribution` with this name, or None."""

    def new(name, display_name):
        """Create an `IDistribution` and its primary archive."""
