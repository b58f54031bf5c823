# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Distribution architecture series interfaces."""

__all__ = [
    "IDistroArchSeries",
]

from zope.interface import Attribute, Interface
from zope.schema import Int, TextLine


class IDistroArchSeries(Interface):
    """An architecture of a distribution series (e.g. noble/amd64)."""

    id = Int(title="ID", required=True, readonly=True)
    distroseries = Attribute("The `IDistroSeries`.")
    processor = Attribute("The `IProcessor` builds for it run on.")
    architecturetag = TextLine(
        title="Architecture Tag", required=True, readonly=True
    )
