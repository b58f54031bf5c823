# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Where OCI recipes and their builds sit in Launchpad's URL space.

Deviation from Launchpad: recipes have no OCI project here, so a recipe
is ``~<owner>/+oci-recipe/<name>`` and a build ``<recipe>/+build/<id>``.
"""

__all__ = [
    "OCIRecipeBuildURL",
    "OCIRecipeURL",
]

from zope.component import adapter
from zope.interface import implementer

from lp.oci.interfaces.ocirecipe import IOCIRecipe
from lp.oci.interfaces.ocirecipebuild import IOCIRecipeBuild
from lp.services.webapp.interfaces import ICanonicalUrlData


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
