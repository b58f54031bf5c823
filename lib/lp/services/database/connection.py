# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Configuring the database connection.

Call `connect` once per process with a Storm database URI:

``postgres:DBNAME?host=/run/pg&port=5432&user=NAME``
    PostgreSQL over a unix socket in ``/run/pg`` (any libpq keyword may be
    given as an option; ``postgres://user:pw@host:port/DBNAME`` works too).
``sqlite:/path/to/launchpad.db``
    An SQLite file; ``sqlite:`` alone is a private in-memory database.
    With ``?mode=ro`` no statement may write (``PRAGMA query_only``;
    a killed writer's hot journal is still rolled back on opening), and
    when the file's directory cannot be written the file is opened
    read-only and immutable: a read-only copy of a state needs no
    journal or lock files.

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
from urllib.parse import quote

from storm.database import Connection, ConnectionWrapper, register_scheme
from storm.databases.postgres import Postgres
from storm.databases.sqlite import SQLite, SQLiteConnection
from storm.exceptions import wrap_exceptions
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

    def begin_immediate(self):
        """Begin a transaction holding SQLite's write lock.

        Waits (the busy timeout) for another writer; a transaction that
        has already read would instead fail at once when it writes
        beside one.  A no-op inside a transaction.
        """
        self._ensure_connected()
        if not self._in_transaction:
            with wrap_exceptions(self._database):
                self._raw_connection.execute("BEGIN IMMEDIATE")
            self._in_transaction = True

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
        self._read_only = uri.options.pop("mode", None) == "ro"
        super().__init__(uri)

    def _raw_connect(self):
        if not self._read_only or self._filename == ":memory:":
            return super()._raw_connect()
        path = os.path.abspath(self._filename)
        if not os.path.isfile(path):
            # Read-only never creates the file.
            raise sqlite3.OperationalError(f"no database file {path}")
        if os.access(os.path.dirname(path), os.W_OK):
            # Opened as usual, so that the hot journal a killed writer
            # left is rolled back (a read-only connection could not),
            # but no statement may write.
            raw_connection = super()._raw_connect()
            raw_connection.execute("PRAGMA query_only = ON")
            return raw_connection
        # A read-only file system: nobody can be writing the file, and
        # SQLite could not create its lock or journal files.
        raw_connection = ConnectionWrapper(
            sqlite3.connect(
                f"file:{quote(path)}?mode=ro&immutable=1",
                uri=True,
                timeout=self._timeout,
                isolation_level=None,
            ),
            self,
        )
        if self._foreign_keys is not None:
            raw_connection.execute(
                f"PRAGMA foreign_keys = {self._foreign_keys}"
            )
        return raw_connection


register_scheme("sqlite", UTCSQLite)


class ReadOnlyCapablePostgres(Postgres):
    """PostgreSQL; with ``?mode=ro``, every transaction is read-only."""

    def __init__(self, uri):
        self._read_only = uri.options.pop("mode", None) == "ro"
        super().__init__(uri)

    def _raw_connect(self):
        raw_connection = super()._raw_connect()
        if self._read_only:
            raw_connection.set_session(readonly=True)
        return raw_connection


register_scheme("postgres", ReadOnlyCapablePostgres)


def default_database_uri(state_dir):
    """The embedded default: an SQLite file under ``state_dir``."""
    return "sqlite:" + os.path.join(os.path.abspath(state_dir), "launchpad.db")


SCHEMA_MODES = ("create", "upgrade", "check")


def sqlite_path(uri):
    """The file of an ``sqlite:`` URI, else None."""
    if not uri.startswith("sqlite:"):
        return None
    path = uri[len("sqlite:") :].split("?", 1)[0]
    return path or None


def connect(uri, schema="create", read_only=False):
    """Use the database at ``uri`` for the main store of every thread.

    :param uri: A Storm database URI (see the module docstring).
    :param schema: What may be done to the schema: ``"create"`` a
        database without one and apply pending migrations,
        ``"upgrade"`` an existing schema only (a database without one
        raises `SchemaMissing`, and a missing SQLite file is not
        created), or ``"check"`` that it is current, writing nothing
        (`check_schema`).
    :param read_only: Write nothing: SQLite as the module docstring
        says, PostgreSQL in read-only transactions; needs
        ``schema="check"``.
    :return: The calling thread's main store.
    """
    # Circular import: the migration code uses the store.
    from lp.services.database.migration import (
        SchemaMissing,
        check_schema,
        upgrade_schema,
    )

    if schema not in SCHEMA_MODES:
        raise ValueError(f"schema must be one of {SCHEMA_MODES}")
    if read_only and schema != "check":
        raise ValueError("a read-only database can only be checked")
    disconnect()
    path = sqlite_path(uri)
    if schema != "create" and path is not None:
        try:
            empty = os.path.getsize(path) == 0
        except OSError:
            raise SchemaMissing("no such file") from None
        if empty:
            # SQLite would take it for an empty database.
            raise SchemaMissing("the file is empty")
    if read_only:
        uri += ("&" if "?" in uri else "?") + "mode=ro"
    global_zstorm.set_default_uri(MAIN_STORE, uri)
    store = get_main_store()
    if schema == "check":
        check_schema(store)
    else:
        upgrade_schema(store, create=schema == "create")
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
