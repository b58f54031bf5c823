# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""People."""

__all__ = [
    "Person",
    "PersonSet",
]

from storm.locals import Int, Unicode
from zope.interface import implementer

from lp.registry.interfaces.person import IPerson, IPersonSet
from lp.services.database.interfaces import IPrimaryStore, IStore
from lp.services.database.stormbase import StormBase


@implementer(IPerson)
class Person(StormBase):
    """See `IPerson`."""

    __storm_table__ = "Person"

    id = Int(primary=True)
    name = Unicode(name="name", allow_none=False)
    display_name = Unicode(name="displayname", allow_none=False)

    def __init__(self, name, display_name):
        super().__init__()
        self.name = name
        self.display_name = display_name

    def __repr__(self):
        return f"<Person {self.name!r}>"


@implementer(IPersonSet)
class PersonSet:
    """See `IPersonSet`."""

    def get(self, personid):
        """See `IPersonSet`."""
        return IStore(Person).get(Person, personid)

    def getByName(self, name):
        """See `IPersonSet`."""
        return IStore(Person).find(Person, name=name).one()

    def new(self, name, display_name=None):
        """See `IPersonSet`."""
        person = Person(name, display_name or name)
        IPrimaryStore(Person).add(person)
        return person
