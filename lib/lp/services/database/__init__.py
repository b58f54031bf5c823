# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Database access: stores, schema migrations and column types.

`connect` (from `lp.services.database.connection`) is re-exported here
because it is the one call a process needs before using any model.
"""

__all__ = [
    "connect",
    "disconnect",
]

from lp.services.database.connection import connect, disconnect
