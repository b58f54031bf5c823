# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Rules for pushing OCI recipe builds to registries."""

__all__ = [
    "OCIPushRule",
    "OCIPushRuleSet",
]

from storm.locals import Int, Reference, Unicode
from zope.interface import implementer

from lp.oci.interfaces.ocipushrule import (
    IOCIPushRule,
    IOCIPushRuleSet,
    OCIPushRuleAlreadyExists,
)
from lp.services.database.interfaces import IPrimaryStore, IStore
from lp.services.database.stormbase import StormBase


@implementer(IOCIPushRule)
class OCIPushRule(StormBase):
    """See `IOCIPushRule`."""

    __storm_table__ = "OCIPushRule"

    id = Int(primary=True)
    recipe_id = Int(name="recipe", allow_none=False)
    recipe = Reference(recipe_id, "OCIRecipe.id")
    registry_credentials_id = Int(
        name="registry_credentials", allow_none=False
    )
    registry_credentials = Reference(
        registry_credentials_id, "OCIRegistryCredentials.id"
    )
    image_name = Unicode(name="image_name", allow_none=False)

    def __init__(self, recipe, registry_credentials, image_name):
        super().__init__()
        self.recipe = recipe
        self.registry_credentials = registry_credentials
        self.image_name = image_name

    def __repr__(self):
        return (
            f"<OCIPushRule {self.id}: {self.registry_url} {self.image_name}>"
        )

    @property
    def registry_url(self):
        """See `IOCIPushRule`."""
        return self.registry_credentials.url

    @property
    def username(self):
        """See `IOCIPushRule`."""
        return self.registry_credentials.username

    def setNewImageName(self, new_image_name):
        """See `IOCIPushRule`."""
        existing = IStore(OCIPushRule).find(
            OCIPushRule,
            OCIPushRule.recipe_id == self.recipe_id,
            OCIPushRule.registry_credentials_id
            == self.registry_credentials_id,
            OCIPushRule.image_name == new_image_name,
            OCIPushRule.id != self.id,
        )
        if not existing.is_empty():
            raise OCIPushRuleAlreadyExists()
        self.image_name = new_image_name

    def destroySelf(self):
        """See `IOCIPushRule`."""
        IStore(OCIPushRule).remove(self)


@implementer(IOCIPushRuleSet)
class OCIPushRuleSet:
    """See `IOCIPushRuleSet`."""

    def new(self, recipe, registry_credentials, image_name):
        """See `IOCIPushRuleSet`."""
        existing = IStore(OCIPushRule).find(
            OCIPushRule,
            OCIPushRule.recipe_id == recipe.id,
            OCIPushRule.registry_credentials_id == registry_credentials.id,
            OCIPushRule.image_name == image_name,
        )
        if not existing.is_empty():
            raise OCIPushRuleAlreadyExists()
        push_rule = OCIPushRule(recipe, registry_credentials, image_name)
        IPrimaryStore(OCIPushRule).add(push_rule)
        return push_rule

    def findByRecipe(self, recipe):
        """See `IOCIPushRuleSet`."""
        return (
            IStore(OCIPushRule)
            .find(OCIPushRule, OCIPushRule.recipe_id == recipe.id)
            .order_by(OCIPushRule.id)
        )

    def findByRegistryCredentials(self, credentials):
        """See `IOCIPushRuleSet`."""
        return (
            IStore(OCIPushRule)
            .find(
                OCIPushRule,
                OCIPushRule.registry_credentials_id == credentials.id,
            )
            .order_by(OCIPushRule.id)
        )

    def getByID(self, id):
        """See `IOCIPushRuleSet`."""
        return IStore(OCIPushRule).get(OCIPushRule, id)
