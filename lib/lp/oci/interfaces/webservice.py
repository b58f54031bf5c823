# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""All the interfaces that are exposed through the webservice.

There is a declaration in ZCML somewhere that looks like:
  <webservice:register module="lp.oci.interfaces.webservice" />

which tells `lazr.restful` that it should look for webservice exports here.
"""

__all__ = [
    "CannotBeRetried",
    "CannotScheduleRegistryUpload",
    "IBuilder",
    "IDistroArchSeries",
    "IOCIPushRule",
    "IOCIRecipe",
    "IOCIRecipeBuild",
    "IOCIRecipeBuildSet",
    "IPerson",
]

from lp.buildmaster.interfaces.builder import IBuilder
from lp.buildmaster.interfaces.buildfarmjob import CannotBeRetried
from lp.oci.interfaces.ocipushrule import IOCIPushRule
from lp.oci.interfaces.ocirecipe import IOCIRecipe
from lp.oci.interfaces.ocirecipebuild import (
    CannotScheduleRegistryUpload,
    IOCIRecipeBuild,
    IOCIRecipeBuildSet,
)
from lp.registry.interfaces.person import IPerson
from lp.soyuz.interfaces.distroarchseries import IDistroArchSeries

# The references that would be import cycles in the interfaces.
for _name in ("builds", "completed_builds", "pending_builds"):
    IOCIRecipe[_name].value_type.schema = IOCIRecipeBuild
IOCIRecipeBuild["recipe"].schema = IOCIRecipe
IOCIRecipe["push_rules"].value_type.schema = IOCIPushRule
