# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Person interfaces.

Only what builds need: a person requests builds and owns recipes.
"""

__all__ = [
    "IPerson",
    "IPersonSet",
]

from zope.interface import Interface
from zope.schema import Int, TextLine


class IPerson(Interface):
    """A person."""

    id = Int(title="ID", required=True, readonly=True)
    name = TextLine(title="Name", required=True, readonly=True)
    display_name = TextLine(title="Display Name", required=True)


class IPersonSet(Interface):
    """Creating and finding `IPerson`s."""

    def get(personid):
        """The `IPerson` with this id, or None."""

    def getByName(name):
        """The `IPerson` with this name, or None."""

    def new(name, display_name=None):
        """Create an `IPerson` (the display name defaults to the name)."""
