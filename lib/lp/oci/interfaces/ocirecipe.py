# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interfaces for OCI recipes."""

__all__ = [
    "IOCIRecipe",
    "IOCIRecipeSet",
]

from lazr.restful.declarations import (
    exported,
    exported_as_webservice_entry,
)
from lazr.restful.fields import CollectionField, Reference
from zope.interface import Attribute, Interface
from zope.schema import Bool, Datetime, Int, Text, TextLine


@exported_as_webservice_entry(
    singular_name="oci_recipe", plural_name="oci_recipes", as_of="beta"
)
class IOCIRecipe(Interface):
    """A recipe for building OCI images.

    Minimal for now: the owner is a name, not a `Person`.  Pushing is
    configured by push rules; ``registry_url`` and ``image_name`` are
    what this tree had before them (``image_name`` names the build).
    """

    id = Int(title="ID", required=True, readonly=True)
    date_created = exported(
        Datetime(title="Date created", required=True, readonly=True)
    )
    name = exported(TextLine(title="Name", required=True, readonly=True))
    # Deviation from Launchpad: the owner is a name, not a link to an
    # `IPerson`, so it is exported as ``owner_name``.
    owner_name = exported(
        TextLine(title="Name of the owner", required=True, readonly=True)
    )
    description = exported(
        Text(title="Description", required=False, readonly=True)
    )
    registry_url = TextLine(
        title="URL of the registry to push builds to", required=False
    )
    image_name = TextLine(title="Image name to push builds as", required=False)
    private = exported(
        Bool(
            title="Private",
            description="Whether the recipe and its builds are private.",
            required=True,
            readonly=True,
        )
    )
    push_rules = Attribute("The `IOCIPushRule`s of this recipe.")
    can_upload_to_registry = exported(
        Bool(
            title="Whether builds can be pushed to a registry",
            description="Whether the recipe has push rules.",
            readonly=True,
        )
    )
    # The value types are patched to `IOCIRecipeBuild` in
    # `lp.oci.interfaces.webservice` (import cycle).
    builds = exported(
        CollectionField(
            title="All builds of this recipe, newest first.",
            value_type=Reference(schema=Interface),
            readonly=True,
        )
    )
    completed_builds = exported(
        CollectionField(
            title="Completed builds of this recipe, newest first.",
            value_type=Reference(schema=Interface),
            readonly=True,
        )
    )
    pending_builds = exported(
        CollectionField(
            title="Pending builds of this recipe, newest first.",
            value_type=Reference(schema=Interface),
            readonly=True,
        )
    )


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
