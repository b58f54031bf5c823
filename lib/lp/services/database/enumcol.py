# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A Storm column holding an item of a lazr.enum `DBEnumeratedType`."""

__all__ = [
    "DBEnum",
]

from lazr.enum import DBItem
from storm.properties import SimpleProperty
from storm.variables import Variable


class DBEnumVariable(Variable):
    """A Storm variable whose database value is a `DBItem`'s integer."""

    __slots__ = ("_enum",)

    def __init__(self, *args, **kwargs):
        self._enum = kwargs.pop("enum")
        super().__init__(*args, **kwargs)

    def parse_set(self, value, from_db):
        if from_db:
            return self._enum.items[value]
        if not isinstance(value, DBItem) or value.enum is not self._enum:
            raise TypeError(f"Not a {self._enum.__name__} item: {value!r}")
        return value

    def parse_get(self, value, to_db):
        if to_db:
            return value.value
        return value


class DBEnum(SimpleProperty):
    """A column whose values are items of ``enum``."""

    variable_class = DBEnumVariable

    def __init__(self, name=None, primary=False, **kwargs):
        kwargs["enum"] = kwargs.pop("enum")
        super().__init__(name, primary, **kwargs)
