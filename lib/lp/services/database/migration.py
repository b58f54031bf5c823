# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Versioned schema migrations for every supported backend.

The schema is a series of files ``schema/NNNN-name.sql`` in portable
SQL, applied in order.  ``LaunchpadDatabaseRevision`` records each one
that has been applied, so applying the series again is a no-op.  Each
migration runs in its own transaction with its revision row, so a
failure leaves the database at the previous revision.

The files are written for PostgreSQL, in the style of Launchpad's
``database/schema/patch-*.sql``; for SQLite they are translated here:

- ``SERIAL PRIMARY KEY`` becomes ``INTEGER PRIMARY KEY AUTOINCREMENT``;
- statements that only matter to PostgreSQL are left out: ``SET``,
  ``COMMENT ON``, ``SELECT setval(...)`` (SQLite's sequences follow
  explicit ids by themselves), and ``ALTER TABLE ... ALTER COLUMN``
  (``SET NOT NULL``, ``TYPE``: SQLite columns are dynamically typed, and
  the models refuse NULL where PostgreSQL would);
- ``ALTER TABLE t ALTER COLUMN c DROP NOT NULL`` removes the constraint
  from the table's definition in ``sqlite_master``, the procedure
  SQLite documents for dropping a NOT NULL constraint (no data changes).

Reading what is applied never writes (`schema_status`): a process that
finds the schema current takes no lock and writes nothing, so readers
never contend with writers at start-up.  When something is pending,
`upgrade_schema` takes the migration lock (a PostgreSQL advisory lock,
SQLite's write lock by ``BEGIN IMMEDIATE``) *before* it reads what is
applied, and creates the revision table under that lock: processes
starting together on a fresh database wait for each other instead of
racing to create the same tables.

A database with no applied revision holds no schema.  Only a caller
that may create a database passes ``create=True``; the others get
`SchemaMissing`, so that a lost or mistyped database is never silently
replaced by an empty one.
"""

__all__ = [
    "Migration",
    "SCHEMA_DIR",
    "SchemaMissing",
    "SchemaOutdated",
    "SchemaTooNew",
    "applied_revisions",
    "check_schema",
    "available_migrations",
    "backend_name",
    "list_tables",
    "schema_status",
    "statements_for",
    "upgrade_schema",
]

import re
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from storm.databases.postgres import Postgres
from storm.databases.sqlite import SQLite

SCHEMA_DIR = Path(__file__).parent / "schema"
REVISION_TABLE = "LaunchpadDatabaseRevision"

_FILENAME_RE = re.compile(r"\A(\d{4})-([a-z0-9][a-z0-9-]*)\.sql\Z")
# Any constant will do; it only has to be the same in every process.
_PG_MIGRATION_LOCK = 0x4C50_0001


class SchemaTooNew(Exception):
    """The database has migrations this code does not know about."""


class SchemaMissing(Exception):
    """The database holds no Launchpad schema (no applied revision)."""


class SchemaOutdated(Exception):
    """The database lacks migrations, and the caller may not apply them."""


class Migration(NamedTuple):
    revision: int
    name: str
    path: Path

    def read(self):
        return self.path.read_text(encoding="utf-8")


def available_migrations(schema_dir=SCHEMA_DIR):
    """The migrations in ``schema_dir``, in the order to apply them."""
    migrations = {}
    for path in Path(schema_dir).iterdir():
        match = _FILENAME_RE.match(path.name)
        if match is None:
            continue
        revision = int(match.group(1))
        if revision in migrations:
            raise ValueError(
                f"Two migrations numbered {revision}: "
                f"{migrations[revision].path.name} and {path.name}"
            )
        migrations[revision] = Migration(revision, match.group(2), path)
    return [migrations[revision] for revision in sorted(migrations)]


def backend_name(store):
    """``"postgres"`` or ``"sqlite"``, for the database behind ``store``."""
    database = store.get_database()
    if isinstance(database, Postgres):
        return "postgres"
    if isinstance(database, SQLite):
        return "sqlite"
    raise ValueError(f"Unsupported database {database!r}")


_DROP_NOT_NULL_RE = re.compile(
    r"\AALTER\s+TABLE\s+(\w+)\s+ALTER\s+COLUMN\s+(\w+)"
    r"\s+DROP\s+NOT\s+NULL\s*;?\Z",
    re.IGNORECASE,
)
_POSTGRES_ONLY_RE = re.compile(
    r"\A(?:SET\s|COMMENT\s+ON\s|SELECT\s+setval\s*\("
    r"|ALTER\s+TABLE\s+\w+\s+ALTER\s+COLUMN\s+(?!\w+\s+DROP\s+NOT\s))",
    re.IGNORECASE,
)


def translate(sql, backend):
    """Adapt portable SQL to ``backend``."""
    if backend == "sqlite":
        sql = re.sub(
            r"\bSERIAL\s+PRIMARY\s+KEY\b",
            "INTEGER PRIMARY KEY AUTOINCREMENT",
            sql,
            flags=re.IGNORECASE,
        )
    return sql


def statements_for(sql, backend):
    """The statements of a migration to run on ``backend``."""
    statements = split_statements(translate(sql, backend))
    if backend == "sqlite":
        statements = [s for s in statements if not _POSTGRES_ONLY_RE.match(s)]
    return statements


def _sqlite_drop_not_null(store, table, column):
    """Drop ``column``'s NOT NULL constraint in SQLite's stored schema."""
    rows = list(
        store.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' "
            "AND lower(name) = lower(?)",
            (table,),
        )
    )
    if not rows:
        raise ValueError(f"No table {table}")
    (definition,) = rows[0]
    pattern = re.compile(
        rf"(\b{re.escape(column)}\s+\w+)\s+NOT\s+NULL\b", re.IGNORECASE
    )
    changed, count = pattern.subn(r"\1", definition, count=1)
    if count == 0:
        return
    (version,) = next(iter(store.execute("PRAGMA schema_version")))
    store.execute("PRAGMA writable_schema = ON", noresult=True)
    try:
        store.execute(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' "
            "AND lower(name) = lower(?)",
            (changed, table),
            noresult=True,
        )
        store.execute(f"PRAGMA schema_version = {version + 1}", noresult=True)
    finally:
        store.execute("PRAGMA writable_schema = OFF", noresult=True)


def _execute(store, statement, backend):
    match = _DROP_NOT_NULL_RE.match(statement)
    if backend == "sqlite" and match:
        _sqlite_drop_not_null(store, match.group(1), match.group(2))
    else:
        store.execute(statement, noresult=True)


def split_statements(sql):
    """Split a script into complete statements, dropping comment lines."""
    statements = []
    pending = []
    for line in sql.splitlines():
        if not pending and (
            not line.strip() or line.lstrip().startswith("--")
        ):
            continue
        pending.append(line)
        text = "\n".join(pending)
        if sqlite3.complete_statement(text):
            statements.append(text.strip())
            pending = []
    if "\n".join(pending).strip():
        raise ValueError("Unterminated SQL statement: %s" % "\n".join(pending))
    return statements


def list_tables(store):
    """The names of the tables in the database behind ``store``."""
    if backend_name(store) == "postgres":
        rows = store.execute(
            "SELECT tablename FROM pg_tables "
            "WHERE schemaname = current_schema()"
        )
    else:
        rows = store.execute(
            "SELECT name FROM sqlite_master "
            "WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    return sorted(row[0] for row in rows)


def _create_revision_table(store):
    store.execute(
        f"CREATE TABLE IF NOT EXISTS {REVISION_TABLE} ("
        " revision INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL,"
        " date_applied TIMESTAMP WITHOUT TIME ZONE NOT NULL)",
        noresult=True,
    )


def applied_revisions(store):
    """The revision numbers already applied, in ascending order."""
    if REVISION_TABLE.lower() not in {t.lower() for t in list_tables(store)}:
        return []
    rows = store.execute(f"SELECT revision FROM {REVISION_TABLE}")
    return sorted(row[0] for row in rows)


def schema_status(store, schema_dir=SCHEMA_DIR):
    """``(applied, pending, unknown)`` revisions; only reads.

    Ends the transaction, so that no read lock outlives the check.
    """
    try:
        applied = set(applied_revisions(store))
    finally:
        store.rollback()
    known = {m.revision for m in available_migrations(schema_dir)}
    return (
        sorted(applied),
        sorted(known - applied),
        sorted(applied - known),
    )


def _too_new(unknown):
    return SchemaTooNew(
        "Database has unknown schema revisions %s"
        % ", ".join(str(r) for r in unknown)
    )


def check_schema(store, schema_dir=SCHEMA_DIR):
    """Refuse a database whose schema is not current; never writes.

    :raises SchemaMissing: no revision is applied.
    :raises SchemaOutdated: some are, but not all.
    :raises SchemaTooNew: revisions this code does not know are applied.
    """
    applied, pending, unknown = schema_status(store, schema_dir)
    if unknown:
        raise _too_new(unknown)
    if not applied:
        raise SchemaMissing("the database holds no Launchpad schema")
    if pending:
        raise SchemaOutdated(
            "the database's schema is at revision %d, this code needs %d"
            % (max(applied), max(applied + pending))
        )


def _lock(store, backend):
    """Take the migration lock before anything is read.

    PostgreSQL: a session advisory lock, taken in a transaction of its
    own and held across the migrations' commits until `_unlock`.  (Storm
    runs transactions in REPEATABLE READ, whose snapshot is taken by
    the first statement: a transaction that waited for the lock would
    still see the schema as it was before the wait.)  SQLite: each
    migration's transaction begins holding the write lock.
    """
    if backend == "postgres":
        store.execute("SELECT pg_advisory_lock(%d)" % _PG_MIGRATION_LOCK)
        store.commit()


def _begin(store, backend):
    if backend == "sqlite":
        # BEGIN IMMEDIATE: SQLite's write lock, waiting (busy timeout)
        # for another writer instead of upgrading a read lock later.
        store._connection.begin_immediate()


def _unlock(store, backend):
    if backend == "postgres":
        try:
            store.rollback()
            store.execute("SELECT pg_advisory_unlock(%d)" % _PG_MIGRATION_LOCK)
            store.commit()
        except Exception:
            # A lost connection has lost its lock too.
            store.rollback()


def upgrade_schema(store, schema_dir=SCHEMA_DIR, create=True):
    """Apply every pending migration; return the revisions applied.

    Commits ``store`` after each migration.  Call it before any other
    work in the transaction.  Writes nothing when the schema is current.

    :param create: Whether a database with no schema may be given one;
        if not, such a database raises `SchemaMissing` (and nothing is
        written).
    """
    backend = backend_name(store)
    store.commit()
    applied, pending, unknown = schema_status(store, schema_dir)
    if unknown:
        raise _too_new(unknown)
    if not pending:
        return []
    if not applied and not create:
        raise SchemaMissing("the database holds no Launchpad schema")
    _lock(store, backend)
    try:
        return _apply(store, backend, available_migrations(schema_dir), create)
    finally:
        _unlock(store, backend)


def _apply(store, backend, migrations, create):
    """Apply ``migrations`` not yet applied; return their revisions."""
    known = {migration.revision for migration in migrations}
    applied_now = []
    for migration in migrations:
        try:
            _begin(store, backend)
            _create_revision_table(store)
            applied = set(applied_revisions(store))
        except BaseException:
            store.rollback()
            raise
        unknown = applied - known
        if unknown:
            store.rollback()
            raise _too_new(sorted(unknown))
        if not applied and not create:
            # Emptied meanwhile: still nothing to build on.
            store.rollback()
            raise SchemaMissing("the database holds no Launchpad schema")
        if migration.revision in applied:
            store.rollback()
            continue
        try:
            for statement in statements_for(migration.read(), backend):
                _execute(store, statement, backend)
            store.execute(
                f"INSERT INTO {REVISION_TABLE} "
                "(revision, name, date_applied) VALUES (?, ?, ?)",
                (
                    migration.revision,
                    migration.name,
                    datetime.now(timezone.utc).replace(tzinfo=None),
                ),
                noresult=True,
            )
        except BaseException:
            store.rollback()
            raise
        store.commit()
        applied_now.append(migration.revision)
    return applied_now
