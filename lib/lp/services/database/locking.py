# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Database locks that serialise work between processes."""

__all__ = [
    "LockType",
    "take_xact_lock",
]

from enum import IntEnum

from lp.services.database.migration import backend_name


class LockType(IntEnum):
    """The first key of a PostgreSQL advisory lock: what is locked."""

    REGISTRY_UPLOAD = 0x4C50_0100
    # A registry repository's tags (`repository_lock_key`).
    REGISTRY_REPOSITORY = 0x4C50_0101


def take_xact_lock(store, lock_type, key):
    """Wait for and take a lock on ``(lock_type, key)`` until commit.

    On PostgreSQL, ``pg_advisory_xact_lock``.  SQLite has one lock for
    the whole database: any write takes it until the transaction ends,
    which serialises (more than) the same work.
    """
    if backend_name(store) == "postgres":
        store.execute(
            "SELECT pg_advisory_xact_lock(?, ?)",
            (int(lock_type) & 0x7FFFFFFF, int(key) & 0x7FFFFFFF),
        )
    else:
        store.execute("UPDATE Job SET id = id WHERE id < 0", noresult=True)
