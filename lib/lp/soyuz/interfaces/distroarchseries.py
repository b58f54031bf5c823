# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Distribution architecture series interfaces."""

__all__ = [
    "IDistroArchSeries",
]

from lazr.restful.declarations import exported, exported_as_webservice_entry
from zope.interface import Attribute, Interface
from zope.schema import Int, TextLine


@exported_as_webservice_entry(as_of="beta", publish_web_link=False)
class IDistroArchSeries(Interface):
    """An architecture of a distribution series (e.g. noble/amd64).

    In the web service at ``<distribution>/<series>/<tag>``, as
    Launchpad's.
    """

    id = Int(title="ID", required=True, readonly=True)
    distroseries = Attribute("The `IDistroSeries`.")
    processor = Attribute("The `IProcessor` builds for it run on.")
    architecturetag = exported(
        TextLine(title="Architecture Tag", required=True, readonly=True)
    )
    display_name = exported(
        TextLine(title="Display name", required=True, readonly=True)
    )
    title = exported(TextLine(title="Title", required=True, readonly=True))
