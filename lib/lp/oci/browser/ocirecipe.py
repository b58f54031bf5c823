# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Where OCI recipes and their builds sit in Launchpad's URL space.

Deviation from Launchpad: recipes have no OCI project here, so a recipe
is ``~<owner>/+oci-recipe/<name>`` and a build ``<recipe>/+build/<id>``.
"""

__all__ = [
    "BuilderURL",
    "DistroArchSeriesURL",
    "OCIPushRuleURL",
    "OCIRecipeBuildURL",
    "OCIRecipeURL",
    "PersonURL",
]

from zope.component import adapter
from zope.interface import implementer

from lp.buildmaster.interfaces.builder import IBuilder
from lp.oci.interfaces.ocipushrule import IOCIPushRule
from lp.oci.interfaces.ocirecipe import IOCIRecipe
from lp.oci.interfaces.ocirecipebuild import IOCIRecipeBuild
from lp.registry.interfaces.person import IPerson
from lp.services.webapp.interfaces import ICanonicalUrlData
from lp.soyuz.interfaces.distroarchseries import IDistroArchSeries


@adapter(IOCIRecipe)
@implementer(ICanonicalUrlData)
class OCIRecipeURL:
    """See `ICanonicalUrlData`."""

    inside = None

    def __init__(self, context):
        self.context = context

    @property
    def path(self):
        return "~%s/+oci-recipe/%s" % (
            self.context.owner_name,
            self.context.name,
        )


@adapter(IOCIRecipeBuild)
@implementer(ICanonicalUrlData)
class OCIRecipeBuildURL:
    """See `ICanonicalUrlData`."""

    def __init__(self, context):
        self.context = context

    @property
    def inside(self):
        return self.context.recipe

    @property
    def path(self):
        return "+build/%d" % self.context.id


@adapter(IOCIPushRule)
@implementer(ICanonicalUrlData)
class OCIPushRuleURL:
    """See `ICanonicalUrlData`: ``<recipe>/+push-rule/<id>``."""

    def __init__(self, context):
        self.context = context

    @property
    def inside(self):
        return self.context.recipe

    @property
    def path(self):
        return "+push-rule/%d" % self.context.id


@adapter(IPerson)
@implementer(ICanonicalUrlData)
class PersonURL:
    """See `ICanonicalUrlData`: ``~<name>``, as Launchpad's."""

    inside = None

    def __init__(self, context):
        self.context = context

    @property
    def path(self):
        return "~%s" % self.context.name


@adapter(IBuilder)
@implementer(ICanonicalUrlData)
class BuilderURL:
    """See `ICanonicalUrlData`: ``builders/<name>``, as Launchpad's."""

    inside = None

    def __init__(self, context):
        self.context = context

    @property
    def path(self):
        return "builders/%s" % self.context.name


@adapter(IDistroArchSeries)
@implementer(ICanonicalUrlData)
class DistroArchSeriesURL:
    """See `ICanonicalUrlData`: ``<distribution>/<series>/<tag>``."""

    inside = None

    def __init__(self, context):
        self.context = context

    @property
    def path(self):
        series = self.context.distroseries
        return "%s/%s/%s" % (
            series.distribution.name,
            series.name,
            self.context.architecturetag,
        )
