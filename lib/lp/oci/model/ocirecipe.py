# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""OCI recipes."""

__all__ = [
    "OCIRecipe",
    "OCIRecipeSet",
]

from datetime import timezone

from storm.locals import Bool, DateTime, Desc, Int, Not, Unicode
from zope.component import getUtility
from zope.interface import implementer

from lp.buildmaster.enums import BuildStatus
from lp.oci.interfaces.ocirecipe import IOCIRecipe, IOCIRecipeSet
from lp.services.database.constants import MAX_DATABASE_ID, utc_now
from lp.services.database.interfaces import IPrimaryStore, IStore
from lp.services.database.stormbase import StormBase

# Launchpad's `OCIRecipe._pending_states`.
PENDING_BUILD_STATES = (
    BuildStatus.NEEDSBUILD,
    BuildStatus.BUILDING,
    BuildStatus.UPLOADING,
    BuildStatus.CANCELLING,
)


@implementer(IOCIRecipe)
class OCIRecipe(StormBase):
    """See `IOCIRecipe`."""

    __storm_table__ = "OCIRecipe"

    id = Int(primary=True)
    date_created = DateTime(allow_none=False, tzinfo=timezone.utc)
    owner_name = Unicode(allow_none=False)
    name = Unicode(allow_none=False)
    description = Unicode()
    registry_url = Unicode()
    image_name = Unicode()
    private = Bool(allow_none=False)

    def __init__(
        self,
        name,
        owner_name,
        description=None,
        registry_url=None,
        image_name=None,
        private=False,
    ):
        super().__init__()
        self.private = private
        self.name = name
        self.owner_name = owner_name
        self.description = description
        self.registry_url = registry_url
        self.image_name = image_name
        self.date_created = utc_now()

    def __repr__(self):
        return f"<OCIRecipe ~{self.owner_name}/{self.name}>"

    @property
    def owner(self):
        """See `IOCIRecipe`."""
        # Circular import.
        from lp.registry.interfaces.person import IPersonSet

        return getUtility(IPersonSet).getByName(self.owner_name)

    registrant = owner

    @property
    def information_type(self):
        """See `IOCIRecipe`."""
        return "Proprietary" if self.private else "Public"

    @property
    def push_rules(self):
        """See `IOCIRecipe`."""
        # Circular import.
        from lp.oci.model.ocipushrule import OCIPushRule

        return list(
            IStore(self)
            .find(OCIPushRule, OCIPushRule.recipe_id == self.id)
            .order_by(OCIPushRule.id)
        )

    @property
    def can_upload_to_registry(self):
        """See `IOCIRecipe`."""
        return bool(self.push_rules)

    def _getBuilds(self, *clauses):
        # Circular import.
        from lp.oci.model.ocirecipebuild import OCIRecipeBuild

        return (
            IStore(self)
            .find(
                OCIRecipeBuild, OCIRecipeBuild.recipe_id == self.id, *clauses
            )
            .order_by(
                Desc(OCIRecipeBuild.date_created), Desc(OCIRecipeBuild.id)
            )
        )

    @property
    def builds(self):
        """See `IOCIRecipe`."""
        return self._getBuilds()

    @property
    def completed_builds(self):
        """See `IOCIRecipe`."""
        # Circular import.
        from lp.oci.model.ocirecipebuild import OCIRecipeBuild

        return self._getBuilds(
            Not(OCIRecipeBuild.status.is_in(PENDING_BUILD_STATES))
        )

    @property
    def pending_builds(self):
        """See `IOCIRecipe`."""
        # Circular import.
        from lp.oci.model.ocirecipebuild import OCIRecipeBuild

        return self._getBuilds(
            OCIRecipeBuild.status.is_in(PENDING_BUILD_STATES)
        )


@implementer(IOCIRecipeSet)
class OCIRecipeSet:
    """See `IOCIRecipeSet`."""

    def new(
        self,
        name,
        owner_name,
        description=None,
        registry_url=None,
        image_name=None,
        private=False,
    ):
        """See `IOCIRecipeSet`."""
        # Circular import.
        from lp.registry.interfaces.person import IPersonSet

        # The owner is a person, as Launchpad's (`owner`).
        if getUtility(IPersonSet).getByName(owner_name) is None:
            getUtility(IPersonSet).new(owner_name)
        recipe = OCIRecipe(
            name,
            owner_name,
            description=description,
            registry_url=registry_url,
            image_name=image_name,
            private=private,
        )
        IPrimaryStore(OCIRecipe).add(recipe)
        return recipe

    def getByID(self, recipe_id):
        """See `IOCIRecipeSet`."""
        if (
            not isinstance(recipe_id, int)
            or isinstance(recipe_id, bool)
            or not 0 < recipe_id <= MAX_DATABASE_ID
        ):
            # No row has it; the database drivers overflow on some.
            return None
        return IStore(OCIRecipe).get(OCIRecipe, recipe_id)

    def findAll(self):
        """See `IOCIRecipeSet`."""
        return list(
            IStore(OCIRecipe)
            .find(OCIRecipe)
            .order_by(OCIRecipe.owner_name, OCIRecipe.name)
        )

    def getByName(self, owner_name, name):
        """See `IOCIRecipeSet`."""
        return (
            IStore(OCIRecipe)
            .find(
                OCIRecipe,
                OCIRecipe.owner_name == owner_name,
                OCIRecipe.name == name,
            )
            .one()
        )
