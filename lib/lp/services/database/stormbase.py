# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The base class for Storm models."""

__all__ = [
    "StormBase",
]

from storm.locals import Store, Storm


class StormBase(Storm):
    """A Storm model.

    Subclasses set ``__storm_table__`` and declare their columns.  Their
    class name is what string references (``Reference(x_id, "Foo.id")``)
    resolve against.
    """

    def destroySelf(self):
        """Remove this object from its store."""
        Store.of(self).remove(self)
