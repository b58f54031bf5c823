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
from zope.interface import Interface
from zope.schema import Bool, Datetime, Int, Text, TextLine

from lp.registry.interfaces.person import IPerson


@exported_as_webservice_entry(
    singular_name="oci_recipe", plural_name="oci_recipes", as_of="beta"
)
class IOCIRecipe(Interface):
    """A recipe for building OCI images.

    The owner is recorded by name (``owner_name``, the harness's own
    field); `owner` and `registrant` are the `IPerson` of that name, as
    Launchpad's person entries.  Pushing is configured by push rules;
    ``registry_url`` is what this tree had before them.  Not exported,
    because nothing here backs them: ``build_file``, ``build_path`` and
    ``build_args`` (the harness replays archives rather than building a
    Dockerfile), ``date_last_modified`` (not recorded) and
    ``requestBuilds`` (a build needs an archive to replay: ``lp-oci run
    --recipe NAME ARCHIVE``).
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
    owner = exported(
        Reference(
            IPerson,
            title="Owner",
            description="The owner of this OCI recipe.",
            required=True,
            readonly=True,
        )
    )
    registrant = exported(
        Reference(
            IPerson,
            title="Registrant",
            description=(
                "The user who registered this recipe: its owner, for "
                "every recipe the harness makes (lp-oci run)."
            ),
            required=True,
            readonly=True,
        )
    )
    information_type = exported(
        TextLine(
            title="Information type",
            description=(
                "The type of information contained in this OCI recipe: "
                "Public, or Proprietary for a private recipe."
            ),
            required=True,
            readonly=True,
        )
    )
    description = exported(
        Text(title="Description", required=False, readonly=True)
    )
    registry_url = TextLine(
        title="URL of the registry to push builds to", required=False
    )
    image_name = exported(
        TextLine(
            title="Image name",
            description="Name to use for registry upload of this recipe.",
            required=False,
            readonly=True,
        )
    )
    private = exported(
        Bool(
            title="Private",
            description="Whether the recipe and its builds are private.",
            required=True,
            readonly=True,
        )
    )
    # The value type is patched to `IOCIPushRule` in
    # `lp.oci.interfaces.webservice` (import cycle).
    push_rules = exported(
        CollectionField(
            title="Push rules for this OCI recipe.",
            description=(
                "All of the push rules for registry upload that apply to "
                "this recipe."
            ),
            value_type=Reference(schema=Interface),
            readonly=True,
        )
    )
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

    def findAll():
        """Every `IOCIRecipe`, by owner and name."""
