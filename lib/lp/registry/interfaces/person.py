# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Person interfaces.

Only what builds need: a person requests builds and owns recipes.
"""

__all__ = [
    "IPerson",
    "IPersonSet",
]

from lazr.restful.declarations import exported, exported_as_webservice_entry
from zope.interface import Interface
from zope.schema import Int, TextLine


@exported_as_webservice_entry(
    singular_name="person",
    plural_name="people",
    as_of="beta",
    publish_web_link=False,
)
class IPerson(Interface):
    """A person.

    In the web service at ``~<name>``, as Launchpad's; only the name and
    the display name, which is all the harness records of a person.
    """

    id = Int(title="ID", required=True, readonly=True)
    name = exported(TextLine(title="Name", required=True, readonly=True))
    display_name = exported(
        TextLine(title="Display Name", required=True, readonly=True)
    )


class IPersonSet(Interface):
    """Creating and finding `IPerson`s."""

    def get(personid):
        """The `IPerson` with this id, or None."""

    def getByName(name):
        """The `IPerson` with this name, or None."""

    def new(name, display_name=None):
        """Create an `IPerson` (the display name defaults to the name)."""
