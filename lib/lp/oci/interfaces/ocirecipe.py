# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interfaces for OCI recipes."""

__all__ = [
    "IOCIRecipe",
    "IOCIRecipeSet",
]

from zope.interface import Attribute, Interface
from zope.schema import Bool, Datetime, Int, Text, TextLine


class IOCIRecipe(Interface):
    """A recipe for building OCI images.

    Minimal for now: the owner is a name, not a `Person`.  Pushing is
    configured by push rules; ``registry_url`` and ``image_name`` are
    what this tree had before them (``image_name`` names the build).
    """

    id = Int(title="ID", required=True, readonly=True)
    date_created = Datetime(title="Date created", required=True, readonly=True)
    name = TextLine(title="Name", required=True)
    owner_name = TextLine(title="Name of the owner", required=True)
    description = Text(title="Description", required=False)
    registry_url = TextLine(
        title="URL of the registry to push builds to", required=False
    )
    image_name = TextLine(title="Image name to push builds as", required=False)
    private = Bool(
        title="Private",
        description="Whether the recipe and its builds are private.",
        required=True,
    )
    push_rules = Attribute("The `IOCIPushRule`s of this recipe.")
    can_upload_to_registry = Bool(
        title="Whether builds can be pushed to a registry",
        description="Whether the recipe has push rules.",
        readonly=True,
    )
    builds = Attribute("The builds of this recipe, newest first.")


class IOCIRecipeSet(Interface):
    """Creating and finding `IOCIRecipe`s."""

    def new(
        name,
        owner_name,
        description=None,
        registry_url=None,
        image_name=None,
        private=False,
    ):
        """Create an `IOCIRecipe`."""

    def getByID(recipe_id):
        """The `IOCIRecipe` with this id, or None."""

    def getByName(owner_name, name):
        """The `IOCIRecipe` of this owner with this name, or None."""
