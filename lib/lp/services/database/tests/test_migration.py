# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for schema migrations, on every backend."""

__all__ = []

import itertools
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading

import transaction
from storm.database import create_database
from storm.store import Store

from lp.services.database.migration import (
    _PG_MIGRATION_LOCK,
    SchemaMissing,
    SchemaOutdated,
    SchemaTooNew,
    applied_revisions,
    available_migrations,
    check_schema,
    list_tables,
    split_statements,
    statements_for,
    translate,
    upgrade_schema,
)
from lp.testing import TestCase
from lp.testing.layers import DatabaseLayer, SQLiteDatabaseLayer
from lpbuildd.ociimage.tests.helpers import CHILD_ENV

_counter = itertools.count()

# Connects to argv[1] once argv[2] exists: processes starting together.
CONNECT_WHEN_TOLD = """
import os, sys, time
from lp.services.database.connection import connect
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
connect(sys.argv[1])
print("ok")
"""


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

    def test_postgres_only_statements_left_out_on_sqlite(self):
        sql = (
            "SET client_min_messages=ERROR;\n"
            "CREATE TABLE a (id SERIAL PRIMARY KEY, x TEXT);\n"
            "ALTER TABLE a ALTER COLUMN x SET NOT NULL;\n"
            "ALTER TABLE a ADD COLUMN y TEXT;\n"
            "SELECT setval('a_id_seq', 5);\n"
            "COMMENT ON TABLE a IS 'A table';\n"
        )
        self.assertEqual(6, len(statements_for(sql, "postgres")))
        self.assertEqual(
            [
                "CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "x TEXT);",
                "ALTER TABLE a ADD COLUMN y TEXT;",
            ],
            statements_for(sql, "sqlite"),
        )

    def test_drop_not_null_kept_on_sqlite(self):
        # Dropping a NOT NULL matters on SQLite too (upgrade_schema
        # applies it there by editing the table's definition).
        sql = "ALTER TABLE a ALTER COLUMN x DROP NOT NULL;\n"
        self.assertEqual(
            ["ALTER TABLE a ALTER COLUMN x DROP NOT NULL;"],
            statements_for(sql, "sqlite"),
        )

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
    backend = "postgres"

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
        for table in (
            "ocifile",
            "ocirecipebuild",
            "libraryfilealias",
            "job",
            "buildfarmjob",
            "buildqueue",
            "builder",
            "processor",
            "person",
            "distribution",
            "distroseries",
            "distroarchseries",
            "archive",
            "ociarchivechecksum",
        ):
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

    def upgradeTo(self, store, revision):
        """Apply the shipped migrations up to ``revision``."""
        directory = self.makeSchemaDir({})
        for migration in available_migrations():
            if migration.revision <= revision:
                shutil.copy(migration.path, directory)
        upgrade_schema(store, directory)

    def test_upgrade_from_0001_with_data(self):
        # A database that lp-oci run used before the build farm tables
        # existed: its builds get requesters, processors, architectures
        # and build farm jobs.
        store = self.makeFreshStore()
        self.upgradeTo(store, 1)
        when = "2026-01-01 12:00:00"
        for recipe_id, owner in ((1, "lp-oci"), (2, "alice")):
            store.execute(
                "INSERT INTO OCIRecipe (id, date_created, owner_name, name) "
                "VALUES (?, ?, ?, 'run')",
                (recipe_id, when, owner),
            )
        for build_id, recipe_id, arch_tag, status in (
            (1, 1, "amd64", 1),
            (2, 1, "arm64", 7),
            (3, 2, "amd64", 0),
        ):
            store.execute(
                "INSERT INTO OCIRecipeBuild (id, recipe, arch_tag, status, "
                "date_created, failure_count, failure_reason) "
                "VALUES (?, ?, ?, ?, ?, 2, 'why')",
                (build_id, recipe_id, arch_tag, status, when),
            )
        store.commit()
        self.assertEqual([2], upgrade_schema(store)[:1])
        rows = store.execute(
            "SELECT OCIRecipeBuild.id, Person.name, Processor.name, "
            "DistroArchSeries.architecturetag, DistroSeries.name, "
            "Distribution.name, BuildFarmJob.status, "
            "BuildFarmJob.failure_count, BuildFarmJob.job_type, "
            "Archive.purpose, OCIRecipeBuild.failure_reason "
            "FROM OCIRecipeBuild "
            "JOIN Person ON Person.id = OCIRecipeBuild.requester "
            "JOIN Processor ON Processor.id = OCIRecipeBuild.processor "
            "JOIN DistroArchSeries "
            "    ON DistroArchSeries.id = OCIRecipeBuild.distro_arch_series "
            "JOIN DistroSeries "
            "    ON DistroSeries.id = DistroArchSeries.distroseries "
            "JOIN Distribution "
            "    ON Distribution.id = DistroSeries.distribution "
            "JOIN BuildFarmJob "
            "    ON BuildFarmJob.id = OCIRecipeBuild.build_farm_job "
            "JOIN Archive ON Archive.id = BuildFarmJob.archive "
            "ORDER BY OCIRecipeBuild.id"
        ).get_all()
        self.assertEqual(
            [
                (
                    1,
                    "lp-oci",
                    "amd64",
                    "amd64",
                    "noble",
                    "ubuntu",
                    1,
                    2,
                    7,
                    1,
                    "why",
                ),
                (
                    2,
                    "lp-oci",
                    "arm64",
                    "arm64",
                    "noble",
                    "ubuntu",
                    7,
                    2,
                    7,
                    1,
                    "why",
                ),
                (
                    3,
                    "alice",
                    "amd64",
                    "amd64",
                    "noble",
                    "ubuntu",
                    0,
                    2,
                    7,
                    1,
                    "why",
                ),
            ],
            [tuple(row) for row in rows],
        )
        # The architecture tag now comes from the architecture.
        self.assertRaises(
            Exception,
            store.execute,
            "SELECT arch_tag FROM OCIRecipeBuild",
        )
        store.rollback()
        # New build farm jobs do not collide with the migrated ones.
        store.execute(
            "INSERT INTO BuildFarmJob (job_type, status, date_created) "
            "VALUES (7, 0, ?)",
            (when,),
        )
        (new_id,) = store.execute("SELECT MAX(id) FROM BuildFarmJob").get_one()
        self.assertEqual(4, new_id)

    def test_upgrade_from_0001_ocifile_and_jobs(self):
        # Files and jobs recorded at 0001 survive the move to Launchpad's
        # column types.
        store = self.makeFreshStore()
        self.upgradeTo(store, 1)
        when = "2026-01-01 12:00:00"
        prefixed = "sha256:" + "a" * 64
        bare = "b" * 64
        store.execute(
            "INSERT INTO OCIRecipe (id, date_created, owner_name, name) "
            "VALUES (1, ?, 'o', 'r')",
            (when,),
        )
        store.execute(
            "INSERT INTO OCIRecipeBuild (id, recipe, arch_tag, status, "
            "date_created) VALUES (1, 1, 'amd64', 1, ?)",
            (when,),
        )
        store.execute(
            "INSERT INTO LibraryFileContent (id, datecreated, filesize, "
            "sha256, sha1, md5) VALUES (1, ?, 1, 'x', 'y', 'z')",
            (when,),
        )
        store.execute(
            "INSERT INTO LibraryFileAlias (id, content, filename, mimetype, "
            "date_created) VALUES (1, 1, 'f', 'text/plain', ?)",
            (when,),
        )
        for file_id, digest in ((1, prefixed), (2, bare), (3, None)):
            store.execute(
                "INSERT INTO OCIFile (id, build, library_file, "
                "layer_file_digest, date_last_used) VALUES (?, 1, 1, ?, ?)",
                (file_id, digest, when),
            )
        store.execute(
            "INSERT INTO Job (id, status, date_created) VALUES (1, 0, ?)",
            (when,),
        )
        store.execute(
            "INSERT INTO OCIRecipeBuildJob (job, build, job_type, json_data) "
            "VALUES (1, 1, 0, ?)",
            ('{"errors": [{"code": "DENIED"}]}',),
        )
        store.commit()
        upgrade_schema(store)
        rows = store.execute(
            "SELECT layer_file_digest FROM OCIFile ORDER BY id"
        ).get_all()
        self.assertEqual(
            [prefixed, bare, None],
            [row[0] if row[0] is None else row[0].rstrip(" ") for row in rows],
        )
        # Queries match padded values with the plain text.
        self.assertEqual(
            (1,),
            store.execute(
                "SELECT id FROM OCIFile WHERE layer_file_digest = ?",
                (prefixed,),
            ).get_one(),
        )
        (json_data,) = store.execute(
            "SELECT json_data FROM OCIRecipeBuildJob"
        ).get_one()
        if self.backend == "postgres":
            self.assertEqual({"errors": [{"code": "DENIED"}]}, json_data)
            self.assertEqual(
                [("layer_file_digest", "character", 80)],
                store.execute(
                    "SELECT column_name, data_type, character_maximum_length "
                    "FROM information_schema.columns "
                    "WHERE table_name = 'ocifile' "
                    "AND column_name = 'layer_file_digest'"
                ).get_all(),
            )
            (json_type,) = store.execute(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'ocirecipebuildjob' "
                "AND column_name = 'json_data'"
            ).get_one()
            self.assertEqual("jsonb", json_type)
            indexes = {
                row[0]
                for row in store.execute(
                    "SELECT indexname FROM pg_indexes "
                    "WHERE tablename = 'ocifile'"
                )
            }
        else:
            self.assertEqual('{"errors": [{"code": "DENIED"}]}', json_data)
            indexes = {
                row[0]
                for row in store.execute(
                    "SELECT name FROM sqlite_master "
                    "WHERE type = 'index' AND tbl_name = 'OCIFile'"
                )
            }
        self.assertIn("ocifile__build__layer_file_digest__key", indexes)
        self.assertIn("ocifile__date_last_used__idx", indexes)

    def test_upgrade_from_0001_empty(self):
        store = self.makeFreshStore()
        self.upgradeTo(store, 1)
        upgrade_schema(store)
        for table in ("Person", "Processor", "Distribution", "Archive"):
            self.assertEqual(
                (0,), store.execute(f"SELECT COUNT(*) FROM {table}").get_one()
            )

    def test_upgrade_to_0006_merges_duplicate_content(self):
        # Content rows duplicated by a race before 0006 are merged into
        # the oldest one, aliases follow, and sha256 becomes unique.
        store = self.makeFreshStore()
        self.upgradeTo(store, 5)
        for content_id, sha256 in (
            (1, "a" * 64),
            (2, "a" * 64),
            (3, "b" * 64),
        ):
            store.execute(
                "INSERT INTO LibraryFileContent "
                "(id, datecreated, filesize, sha256, sha1, md5) "
                "VALUES (?, '2026-01-01 00:00:00', 1, ?, 'x', 'y')",
                (content_id, sha256),
            )
        for alias_id, content_id in ((1, 1), (2, 2), (3, 3), (4, None)):
            store.execute(
                "INSERT INTO LibraryFileAlias "
                "(id, content, filename, mimetype, date_created) "
                "VALUES (?, ?, 'f', 'x', '2026-01-01 00:00:00')",
                (alias_id, content_id),
            )
        store.commit()
        upgrade_schema(store)
        self.assertEqual(
            [(1, "a" * 64), (3, "b" * 64)],
            list(
                store.execute(
                    "SELECT id, sha256 FROM LibraryFileContent ORDER BY id"
                )
            ),
        )
        self.assertEqual(
            [(1, 1), (2, 1), (3, 3), (4, None)],
            list(
                store.execute(
                    "SELECT id, content FROM LibraryFileAlias ORDER BY id"
                )
            ),
        )
        self.assertRaises(
            Exception,
            store.execute,
            "INSERT INTO LibraryFileContent "
            "(datecreated, filesize, sha256, sha1, md5) "
            "VALUES ('2026-01-01 00:00:00', 1, ?, 'x', 'y')",
            ("b" * 64,),
        )
        store.rollback()

    def test_drop_not_null(self):
        # DROP NOT NULL works on both backends (on SQLite by editing the
        # stored table definition); the data and other constraints stay.
        store = self.makeFreshStore()
        schema = self.makeSchemaDir(
            {
                "0001-a.sql": "CREATE TABLE A (id SERIAL PRIMARY KEY, "
                "x TEXT NOT NULL, y TEXT NOT NULL);\n"
                "INSERT INTO A (x, y) VALUES ('1', '2');\n",
                "0002-b.sql": "ALTER TABLE A ALTER COLUMN x DROP NOT NULL;\n",
            }
        )
        upgrade_schema(store, schema)
        store.execute("INSERT INTO A (x, y) VALUES (NULL, '3')")
        self.assertEqual(
            [("1", "2"), (None, "3")],
            list(store.execute("SELECT x, y FROM A ORDER BY id")),
        )
        self.assertRaises(
            Exception, store.execute, "INSERT INTO A (x, y) VALUES ('4', NULL)"
        )
        store.rollback()

    def test_librarian_md5_optional(self):
        # 0007: content stored from verified downloads has no md5.
        store = self.makeFreshStore()
        upgrade_schema(store)
        store.execute(
            "INSERT INTO LibraryFileContent "
            "(datecreated, filesize, sha256, sha1, md5) "
            "VALUES ('2026-01-01', 1, 'a', 'b', NULL)"
        )
        self.assertEqual(
            (None,),
            store.execute("SELECT md5 FROM LibraryFileContent").get_one(),
        )
        store.rollback()

    def freshURI(self):
        """The URI of a new, empty database (no store on it)."""
        name = "fresh_uri%d_%d" % (id(self), next(_counter))
        self.layer.cluster.createdb(name)
        store = Store(create_database(self.layer.cluster.uri(name)))
        self.addCleanup(self._dropdb, store, name)
        return self.layer.cluster.uri(name)

    def holdMigrationLock(self, uri):
        """Hold what `upgrade_schema` would lock, from another session.

        :return: a function that releases it.
        """
        connection = self.layer.cluster.connect(
            uri.split(":")[1].split("?")[0]
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_lock(%s)", (_PG_MIGRATION_LOCK,)
            )
        return connection.close

    def test_without_create_an_empty_database_is_left_empty(self):
        store = self.makeFreshStore()
        self.assertRaises(SchemaMissing, upgrade_schema, store, create=False)
        self.assertEqual([], list_tables(store))
        self.assertRaises(SchemaMissing, check_schema, store)
        self.assertEqual([], list_tables(store))

    def test_check_refuses_an_outdated_schema_and_writes_nothing(self):
        store = self.makeFreshStore()
        self.upgradeTo(store, 1)
        self.assertRaises(SchemaOutdated, check_schema, store)
        self.assertEqual([1], applied_revisions(store))
        store.rollback()
        # Without create, an existing schema is upgraded.
        upgrade_schema(store, create=False)
        check_schema(store)

    def test_current_schema_takes_no_lock(self):
        # A process finding the schema current writes nothing and waits
        # for no one: readers never contend with a writer at start-up.
        uri = self.freshURI()
        store = Store(create_database(uri))
        upgrade_schema(store)
        store.close()
        release = self.holdMigrationLock(uri)
        results = []

        def upgrade():
            # SQLite connections belong to their thread.
            store = Store(create_database(uri))
            try:
                results.append(upgrade_schema(store))
            finally:
                store.close()

        worker = threading.Thread(target=upgrade)
        worker.start()
        worker.join(10)
        waited = worker.is_alive()
        release()
        worker.join()
        self.assertFalse(waited, "upgrade_schema waited for the lock")
        self.assertEqual([[]], results)

    def test_processes_starting_together_on_a_fresh_database(self):
        expected = [m.revision for m in available_migrations()]
        for attempt in range(3):
            uri = self.freshURI()
            start = os.path.join(tempfile.mkdtemp(), "start")
            self.addCleanup(shutil.rmtree, os.path.dirname(start))
            children = [
                subprocess.Popen(
                    [sys.executable, "-c", CONNECT_WHEN_TOLD, uri, start],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=CHILD_ENV,
                )
                for _ in range(6)
            ]
            with open(start, "w"):
                pass
            for child in children:
                stdout, stderr = child.communicate(timeout=120)
                self.assertEqual(
                    (0, "ok\n"), (child.returncode, stdout), stderr
                )
            store = Store(create_database(uri))
            self.assertEqual(expected, applied_revisions(store))
            store.close()

    def test_read_only_connection_writes_nothing(self):
        from lp.services.database.connection import connect

        uri = self.freshURI()
        store = Store(create_database(uri))
        upgrade_schema(store)
        store.close()

        def back_to_the_layer():
            transaction.abort()
            connect(self.layer.uri)

        self.addCleanup(back_to_the_layer)
        transaction.abort()
        store = connect(uri, schema="check", read_only=True)
        self.assertEqual(
            [m.revision for m in available_migrations()],
            applied_revisions(store),
        )
        self.assertRaises(
            Exception, store.execute, "CREATE TABLE Written (x INTEGER)"
        )
        transaction.abort()
        self.assertNotIn("written", {t.lower() for t in list_tables(store)})
        transaction.abort()

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
    backend = "sqlite"

    def makeFreshStore(self):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        store = Store(
            create_database("sqlite:" + os.path.join(directory, "fresh.db"))
        )
        self.addCleanup(store.close)
        return store

    def freshURI(self):
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        return "sqlite:" + os.path.join(directory, "fresh.db")

    def holdMigrationLock(self, uri):
        connection = sqlite3.connect(
            uri[len("sqlite:") :], isolation_level=None
        )
        connection.execute("BEGIN IMMEDIATE")
        return connection.close
