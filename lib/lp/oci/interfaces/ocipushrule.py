# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interfaces for handling OCI push rules."""

__all__ = [
    "IOCIPushRule",
    "IOCIPushRuleSet",
    "OCIPushRuleAlreadyExists",
]

from lazr.restful.declarations import exported, exported_as_webservice_entry
from zope.interface import Attribute, Interface
from zope.schema import Int, TextLine


class OCIPushRuleAlreadyExists(Exception):
    """A push rule already exists with the same arguments."""

    def __init__(self):
        super().__init__(
            "A push rule already exists with the same URL, image name, "
            "and credentials"
        )


@exported_as_webservice_entry(
    singular_name="oci_push_rule", as_of="beta", publish_web_link=False
)
class IOCIPushRule(Interface):
    """A rule for pushing an OCI recipe's builds to a registry.

    In the web service at ``<recipe>/+push-rule/<id>``, as Launchpad's.
    """

    id = Int(title="ID", required=True, readonly=True)
    recipe = Attribute("The `IOCIRecipe` this push rule is for.")
    registry_credentials = Attribute(
        "The `IOCIRegistryCredentials` to use for pushing."
    )
    registry_url = exported(
        TextLine(
            title="Registry URL",
            description="The registry URL (from the credentials).",
            readonly=True,
        )
    )
    username = exported(
        TextLine(
            title="Username",
            description="The registry username (from the credentials).",
            required=False,
            readonly=True,
        )
    )
    image_name = exported(
        TextLine(
            title="Image name",
            description="The repository the image is pushed to.",
            required=True,
            readonly=True,
        )
    )

    def setNewImageName(new_image_name):
        """Set the image name of this push rule.

        :raises OCIPushRuleAlreadyExists: if another rule of the recipe
            has the same credentials and image name.
        """

    def destroySelf():
        """Delete this push rule."""


class IOCIPushRuleSet(Interface):
    """A utility to create and access OCI push rules."""

    def new(recipe, registry_credentials, image_name):
        """Create a new `IOCIPushRule`."""

    def findByRecipe(recipe):
        """The push rules of ``recipe``."""

    def findByRegistryCredentials(credentials):
        """The push rules using ``credentials``."""

    def getByID(id):
        """The push rule with this id, or None."""
