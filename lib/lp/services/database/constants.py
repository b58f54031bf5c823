# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Values used when writing to the database."""

__all__ = [
    "DEFAULT",
    "MAX_DATABASE_ID",
    "utc_now",
]

from datetime import datetime, timezone

from storm.expr import SQL

# Let the database fill in the column's default.
DEFAULT = SQL("DEFAULT")

# Ids are 64-bit signed integers on both backends: no row has a larger
# one, and the drivers overflow on them.
MAX_DATABASE_ID = 2**63 - 1


def utc_now():
    """The current time as an aware UTC datetime.

    Launchpad uses the SQL expression ``UTC_NOW``; a Python value works
    on every backend and is what the models here use.
    """
    return datetime.now(timezone.utc)
