# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interfaces for getting at the database.

Adapt a model class or instance to one of these to get a Storm store:
``IStore(OCIFile)``, ``IPrimaryStore(OCIFile)``.  There is a single
database, so every flavour returns the same thread-local store, joined
to the current `transaction`.
"""

__all__ = [
    "IMasterStore",
    "IPrimaryStore",
    "IStandbyStore",
    "IStore",
]

from zope.interface import Interface


class IStore(Interface):
    """A Storm store suitable for the object or class being adapted.

    For an instance that is already in a store, that store; otherwise the
    main store.
    """


class IPrimaryStore(IStore):
    """A Storm store that can be written to."""


class IStandbyStore(IStore):
    """A Storm store for reading, possibly lagging behind the primary."""


# Launchpad's former name for `IPrimaryStore`.
IMasterStore = IPrimaryStore
