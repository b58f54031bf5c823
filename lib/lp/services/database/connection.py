# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Configuring the database connection.

Call `connect` once per process with a Storm database URI:

``postgres:DBNAME?host=/run/pg&port=5432&user=NAME``
    PostgreSQL over a unix socket in ``/run/pg`` (any libpq keyword may be
    given as an option; ``postgres://user:pw@host:port/DBNAME`` works too).
``sqlite:/path/to/launchpad.db``
    An SQLite file; ``sqlite:`` alone is a private in-memory database.

Afterwards ``IStore(SomeModel)`` gives the thread's store, which takes
part in the `transaction` package's transactions: code calls
``transaction.commit()`` and ``transaction.abort()`` as in Launchpad.
"""

__all__ = [
    "MAIN_STORE",
    "connect",
    "default_database_uri",
    "disconnect",
    "get_main_store",
    "get_store_for",
]

import os
import sqlite3
from datetime import datetime, timezone

from storm.database import Connection, register_scheme
from storm.databases.sqlite import SQLite, SQLiteConnection
from storm.store import Store
from storm.variables import Variable
from storm.zope.zstorm import global_zstorm

MAIN_STORE = "main"


class UTCSQLiteConnection(SQLiteConnection):
    """An SQLite connection that stores datetimes as naive UTC text.

    Storm writes ``str(datetime)``, and cannot read back the ``+00:00``
    that an aware datetime would add.  PostgreSQL's ``timestamp without
    time zone`` columns already drop the offset, so both backends end up
    holding the same naive UTC values.
    """

    def raw_execute(self, statement, params=None, _end=False):
        """Execute a statement; never retry "database is locked".

        SQLite's busy handler (the connection's ``timeout``) already
        waits for another connection's lock.  When SQLite reports the
        lock at once instead, two transactions each hold a lock the
        other needs (a read lock upgrading to write beside another
        writer): retrying the statement, as Storm's `SQLiteConnection`
        does for its whole timeout, only waits for the other side to
        time out too.  Raise at once, so that the transaction is
        aborted and run again (`lp.services.database.retry`).
        """
        if _end:
            self._in_transaction = False
        elif not self._in_transaction:
            self._in_transaction = True
            self._raw_connection.execute("BEGIN")
        try:
            return Connection.raw_execute(self, statement, params)
        except sqlite3.OperationalError as e:
            if _end and "database is locked" in str(e):
                # COMMIT failed: the transaction is still open.
                self._in_transaction = True
            raise

    @staticmethod
    def to_database(params):
        for param in params:
            if isinstance(param, Variable):
                param = param.get(to_db=True)
            if isinstance(param, datetime) and param.tzinfo is not None:
                param = param.astimezone(timezone.utc).replace(tzinfo=None)
            yield from SQLiteConnection.to_database([param])


class UTCSQLite(SQLite):
    connection_factory = UTCSQLiteConnection

    def __init__(self, uri):
        # Without foreign keys SQLite would accept dangling references
        # that PostgreSQL rejects; make the backends agree.
        uri.options.setdefault("foreign_keys", "ON")
        # Wait for another process's write transaction rather than fail
        # with "database is locked" after Storm's default 5 seconds.
        uri.options.setdefault("timeout", "60")
        super().__init__(uri)


register_scheme("sqlite", UTCSQLite)


def default_database_uri(state_dir):
    """The embedded default: an SQLite file under ``state_dir``."""
    return "sqlite:" + os.path.join(os.path.abspath(state_dir), "launchpad.db")


def connect(uri, upgrade=True):
    """Use the database at ``uri`` for the main store of every thread.

    :param uri: A Storm database URI (see the module docstring).
    :param upgrade: Apply any pending schema migrations (a no-op when
        the schema is current).
    :return: The calling thread's main store.
    """
    # Circular import: the migration code uses the store.
    from lp.services.database.migration import upgrade_schema

    disconnect()
    global_zstorm.set_default_uri(MAIN_STORE, uri)
    store = get_main_store()
    if upgrade:
        upgrade_schema(store)
    return store


def disconnect():
    """Close and forget the main stores and the configured URI."""
    global_zstorm._reset()


def get_main_store():
    """The calling thread's main store."""
    return global_zstorm.get(MAIN_STORE)


def get_store_for(obj):
    """The store an object lives in, or else the main store.

    The adapter factory behind `IStore` and `IPrimaryStore`; ``obj`` may
    be a model class or an instance.
    """
    if not isinstance(obj, type):
        store = Store.of(obj)
        if store is not None:
            return store
    return get_main_store()
