# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for schema migrations, on every backend."""

__all__ = []

import os
import shutil
import tempfile

from storm.database import create_database
from storm.store import Store

from lp.services.database.migration import (
    SchemaTooNew,
    applied_revisions,
    available_migrations,
    list_tables,
    split_statements,
    translate,
    upgrade_schema,
)
from lp.testing import TestCase
from lp.testing.layers import DatabaseLayer, SQLiteDatabaseLayer


class TestMigrationFiles(TestCase):
    """The parts of the migration machinery that need no database."""

    def makeSchemaDir(self, files):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        for name, text in files.items():
            with open(os.path.join(directory, name), "w") as f:
                f.write(text)
        return directory

    def test_available_migrations_in_order(self):
        directory = self.makeSchemaDir(
            {
                "0002-second.sql": "",
                "0001-first.sql": "",
                "README": "",
                "0003-Bad Name.sql": "",
            }
        )
        self.assertEqual(
            [(1, "first"), (2, "second")],
            [(m.revision, m.name) for m in available_migrations(directory)],
        )

    def test_duplicate_revisions_refused(self):
        directory = self.makeSchemaDir({"0001-a.sql": "", "0001-b.sql": ""})
        self.assertRaises(ValueError, available_migrations, directory)

    def test_shipped_migrations_are_numbered_from_one(self):
        revisions = [m.revision for m in available_migrations()]
        self.assertEqual(list(range(1, len(revisions) + 1)), revisions)

    def test_split_statements(self):
        sql = (
            "-- A comment; with a semicolon\n"
            "CREATE TABLE a (x TEXT DEFAULT 'p;q');\n"
            "\n"
            "CREATE INDEX a__x\n    ON a (x);\n"
        )
        self.assertEqual(
            [
                "CREATE TABLE a (x TEXT DEFAULT 'p;q');",
                "CREATE INDEX a__x\n    ON a (x);",
            ],
            split_statements(sql),
        )

    def test_split_statements_unterminated(self):
        self.assertRaises(ValueError, split_statements, "CREATE TABLE a (")

    def test_translate(self):
        sql = "CREATE TABLE a (id SERIAL PRIMARY KEY);"
        self.assertEqual(sql, translate(sql, "postgres"))
        self.assertEqual(
            "CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT);",
            translate(sql, "sqlite"),
        )


class TestUpgradeSchema(TestCase):
    """Migrations against a real database (PostgreSQL here)."""

    layer = DatabaseLayer

    def makeFreshStore(self):
        name = "fresh%d" % id(self)
        self.layer.cluster.createdb(name)
        store = Store(create_database(self.layer.cluster.uri(name)))
        self.addCleanup(self._dropdb, store, name)
        return store

    def _dropdb(self, store, name):
        store.close()
        connection = self.layer.cluster.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE "{name}"')
        finally:
            connection.close()

    def makeSchemaDir(self, files):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        for name, text in files.items():
            with open(os.path.join(directory, name), "w") as f:
                f.write(text)
        return directory

    def test_layer_database_is_current(self):
        from lp.services.database.connection import get_main_store

        self.assertEqual(
            [m.revision for m in available_migrations()],
            applied_revisions(get_main_store()),
        )

    def test_upgrade_applies_everything_once(self):
        store = self.makeFreshStore()
        expected = [m.revision for m in available_migrations()]
        self.assertEqual(expected, upgrade_schema(store))
        self.assertEqual(expected, applied_revisions(store))
        tables = {t.lower() for t in list_tables(store)}
        for table in ("ocifile", "ocirecipebuild", "libraryfilealias", "job"):
            self.assertIn(table, tables)
        # A second run is a no-op.
        self.assertEqual([], upgrade_schema(store))
        self.assertEqual(expected, applied_revisions(store))

    def test_failed_migration_leaves_previous_revision(self):
        store = self.makeFreshStore()
        directory = self.makeSchemaDir(
            {
                "0001-good.sql": "CREATE TABLE Good (id SERIAL PRIMARY KEY);",
                "0002-bad.sql": (
                    "CREATE TABLE Half (id INTEGER);\n"
                    "CREATE TABLE Broken (id INTEGER,);\n"
                ),
            }
        )
        self.assertRaises(Exception, upgrade_schema, store, directory)
        self.assertEqual([1], applied_revisions(store))
        tables = {t.lower() for t in list_tables(store)}
        self.assertIn("good", tables)
        self.assertNotIn("half", tables)

    def test_unknown_revision_refused(self):
        store = self.makeFreshStore()
        newer = self.makeSchemaDir(
            {"0001-a.sql": "", "0002-b.sql": "CREATE TABLE B (x TEXT);"}
        )
        upgrade_schema(store, newer)
        older = self.makeSchemaDir({"0001-a.sql": ""})
        self.assertRaises(SchemaTooNew, upgrade_schema, store, older)


class TestUpgradeSchemaSQLite(TestUpgradeSchema):
    layer = SQLiteDatabaseLayer

    def makeFreshStore(self):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        store = Store(
            create_database("sqlite:" + os.path.join(directory, "fresh.db"))
        )
        self.addCleanup(store.close)
        return store
