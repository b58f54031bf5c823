# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Each way of losing a state's database, and readers that never write.

A state whose librarian holds content but whose database is missing,
empty (0 bytes), the wrong (empty) PostgreSQL database, or a database
with the schema but none of the rows, is never given a fresh schema nor
stripped of its "orphans": every command refuses with one line, or
``verify --repair`` keeps every file and says why.  Commands that only
read write nothing at start-up: they run while another process holds
SQLite's write lock.
"""

__all__ = []

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys

from fixtures import TempDir
from testtools import TestCase

from lp.testing.layers import DatabaseLayer
from lpbuildd.ociimage.tests.helpers import CHILD_ENV
from lpoci.tests.test_verify import VerifyStateLayer

# Gives the database at argv[1] the current schema and no rows.
MAKE_SCHEMA = (
    "import sys\n"
    "from lp.services.database.connection import connect\n"
    "connect(sys.argv[1])\n"
)


# Spills a transaction into argv[1], then dies before committing it.
KILLED_WRITER = (
    "import os, signal, sqlite3, sys\n"
    "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "db.execute('CREATE TABLE KilledWriter (x TEXT)')\n"
    "db.execute('PRAGMA cache_size = 1')\n"
    "db.execute('BEGIN')\n"
    "for i in range(2000):\n"
    "    db.execute('INSERT INTO KilledWriter VALUES (?)', ('x' * 500,))\n"
    "os.kill(os.getpid(), signal.SIGKILL)\n"
)


def lp_oci(*args, timeout=120, **env):
    child_env = dict(CHILD_ENV)
    child_env.pop("LP_DATABASE_URI", None)
    child_env.pop("LP_LIBRARIAN_ROOT", None)
    child_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "lpoci.cli", *args],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr


def make_schema(uri):
    subprocess.run(
        [sys.executable, "-c", MAKE_SCHEMA, uri],
        check=True,
        env=CHILD_ENV,
        timeout=120,
    )


def librarian_listing(state):
    """``{relative path: size}`` of every file under the librarian."""
    root = os.path.join(state, "librarian")
    listing = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            listing[os.path.relpath(path, root)] = os.path.getsize(path)
    return listing


class LostDatabaseMixin:
    """What every way of losing the database must leave alone."""

    def assertRefused(self, result, *expected):
        status, stdout, stderr = result
        self.assertEqual(1, status, stderr)
        self.assertEqual("", stdout)
        self.assertEqual(1, len(stderr.splitlines()), stderr)
        self.assertTrue(stderr.startswith("lp-oci: error: "), stderr)
        for text in expected:
            self.assertIn(text, stderr)

    def assertEveryCommandRefuses(self, *expected, **env):
        before = librarian_listing(self.state)
        self.assertNotEqual({}, before)
        for args in (
            ("verify",),
            ("verify", "--repair"),
            ("verify", "--repair", "--json"),
            ("list",),
            ("export", "1", "--format", "oci", "-o", self.output),
            ("run-jobs",),
            ("run", "--sample"),
        ):
            self.assertRefused(
                lp_oci(*args, "--state", self.state, **env), *expected
            )
        self.assertEqual(before, librarian_listing(self.state))
        self.assertFalse(os.path.exists(self.output))

    def assertRepairKeepsEveryFile(self, **env):
        before = librarian_listing(self.state)
        status, stdout, stderr = lp_oci(
            "verify", "--repair", "--state", self.state, **env
        )
        self.assertEqual(1, status, stderr)
        self.assertEqual(before, librarian_listing(self.state))
        lines = stdout.splitlines()
        # One line says why, not one per file.
        self.assertEqual(2, len(lines), stdout)
        self.assertIn("not removing", lines[0])
        self.assertIn("the database holds no content rows", lines[0])
        self.assertIn("problems", lines[1])
        status, stdout, _ = lp_oci(
            "verify", "--repair", "--json", "--state", self.state, **env
        )
        report = json.loads(stdout)
        self.assertEqual(1, status)
        self.assertFalse(report["clean"])
        self.assertNotEqual([], report["orphans"])
        for entry in report["orphans"]:
            self.assertIn("skipped: not removing", entry["repair"])
        self.assertEqual(before, librarian_listing(self.state))


class TestLostSQLiteDatabase(LostDatabaseMixin, TestCase):
    layer = VerifyStateLayer

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(TempDir()).path
        self.state = os.path.join(self.tmp, "state")
        shutil.copytree(self.layer.state, self.state)
        self.database = os.path.join(self.state, "launchpad.db")
        self.output = os.path.join(self.tmp, "out.tar")

    def test_missing_database(self):
        os.unlink(self.database)
        self.assertEveryCommandRefuses()
        self.assertFalse(os.path.exists(self.database))

    def test_empty_database_file(self):
        open(self.database, "w").close()
        self.assertEveryCommandRefuses("the file is empty")
        self.assertEqual(0, os.path.getsize(self.database))

    def test_run_refuses_with_the_reason(self):
        os.unlink(self.database)
        _, _, stderr = lp_oci("run", "--sample", "--state", self.state)
        self.assertIn("no such file, but the librarian", stderr)
        self.assertIn("refusing to use it as a new state", stderr)

    def test_database_with_schema_and_no_rows(self):
        other = os.path.join(self.tmp, "other.db")
        make_schema("sqlite:" + other)
        self.assertRepairKeepsEveryFile(LP_DATABASE_URI="sqlite:" + other)

    def test_orphans_outnumbering_the_rows_are_kept(self):
        # A database that accounts for fewer files than it would
        # remove is not the one that stored them.
        with sqlite3.connect(self.database) as db:
            db.execute("PRAGMA foreign_keys = OFF")
            (total,) = db.execute(
                "SELECT count(*) FROM LibraryFileContent"
            ).fetchone()
            db.execute(
                "DELETE FROM LibraryFileContent WHERE id IN (SELECT id "
                "FROM LibraryFileContent ORDER BY id LIMIT ?)",
                (total // 2 + 1,),
            )
        before = librarian_listing(self.state)
        status, stdout, _ = lp_oci(
            "verify", "--repair", "--json", "--state", self.state
        )
        self.assertEqual(1, status)
        report = json.loads(stdout)
        self.assertEqual(total // 2 + 1, len(report["orphans"]))
        self.assertIn(
            "the database accounts for only", report["orphans"][0]["repair"]
        )
        self.assertEqual(before, librarian_listing(self.state))

    def test_orphans_older_than_the_database_are_kept(self):
        # A few files the database does not know, stored before it
        # existed: another database stored them.
        orphans = []
        for n in range(2):
            content = b"from another database %d" % n
            sha256 = hashlib.sha256(content).hexdigest()
            path = os.path.join(self.state, "librarian", sha256[:2], sha256)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(content)
            os.utime(path, (946684800, 946684800))  # 2000-01-01
            orphans.append(path)
        status, stdout, _ = lp_oci(
            "verify", "--repair", "--json", "--state", self.state
        )
        self.assertEqual(1, status)
        report = json.loads(stdout)
        self.assertEqual(
            sorted(orphans), [e["path"] for e in report["orphans"]]
        )
        self.assertIn(
            "2 are older than the database", report["orphans"][0]["repair"]
        )
        for path in orphans:
            self.assertTrue(os.path.exists(path))
        # A young orphan (an interrupted store) is removed as before.
        for path in orphans:
            os.utime(path)
        status, stdout, _ = lp_oci(
            "verify", "--repair", "--json", "--state", self.state
        )
        self.assertEqual(0, status, stdout)
        for path in orphans:
            self.assertFalse(os.path.exists(path))

    def test_verify_does_not_upgrade_an_outdated_schema(self):
        with sqlite3.connect(self.database) as db:
            db.execute(
                "DELETE FROM LaunchpadDatabaseRevision WHERE revision = "
                "(SELECT max(revision) FROM LaunchpadDatabaseRevision)"
            )
            (revisions,) = db.execute(
                "SELECT count(*) FROM LaunchpadDatabaseRevision"
            ).fetchone()
        for args in (("verify",), ("verify", "--repair")):
            self.assertRefused(
                lp_oci(*args, "--state", self.state), "upgrades it"
            )
        with sqlite3.connect(self.database) as db:
            self.assertEqual(
                (revisions,),
                db.execute(
                    "SELECT count(*) FROM LaunchpadDatabaseRevision"
                ).fetchone(),
            )

    def test_verify_after_a_writer_was_killed_mid_transaction(self):
        # A hot journal is left; the reader rolls it back on opening.
        killed = subprocess.run(
            [sys.executable, "-c", KILLED_WRITER, self.database],
            timeout=60,
        )
        self.assertEqual(-9, killed.returncode)
        self.assertTrue(os.path.exists(self.database + "-journal"))
        status, stdout, stderr = lp_oci("verify", "--state", self.state)
        self.assertEqual(0, status, stdout + stderr)
        with sqlite3.connect(self.database) as db:
            self.assertEqual(
                [], db.execute("SELECT * FROM KilledWriter").fetchall()
            )

    def test_readers_write_nothing_at_start_up(self):
        # Another process holds SQLite's write lock (a run-jobs in the
        # middle of a transaction): readers neither wait nor fail.
        writer = sqlite3.connect(self.database, isolation_level=None)
        self.addCleanup(writer.close)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE OCIRecipeBuild SET failure_count = 0")
        for args in (
            ("verify",),
            ("list",),
            ("show", "1"),
            ("export", "1", "--format", "oci", "-o", self.output),
        ):
            status, stdout, stderr = lp_oci(
                *args, "--state", self.state, timeout=30
            )
            self.assertEqual(0, status, f"{args}: {stderr}")
        writer.execute("ROLLBACK")


class TestLostPostgreSQLDatabase(LostDatabaseMixin, TestCase):
    """The state's data in PostgreSQL; ``--config`` names another."""

    layer = DatabaseLayer

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(TempDir()).path
        self.state = os.path.join(self.tmp, "state")
        self.output = os.path.join(self.tmp, "out.tar")
        cluster = DatabaseLayer.cluster
        suffix = f"{os.getpid()}_{id(self)}"
        self.real, self.wrong = f"real_{suffix}", f"wrong_{suffix}"
        for name in (self.real, self.wrong):
            cluster.createdb(name)
            self.addCleanup(self.dropdb, name)
        status, _, stderr = lp_oci(
            "run",
            "--sample",
            "--state",
            self.state,
            LP_DATABASE_URI=cluster.uri(self.real),
        )
        self.assertEqual(0, status, stderr)

    def dropdb(self, name):
        db = DatabaseLayer.cluster.connect()
        try:
            with db.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            db.close()

    def tables(self, name):
        db = DatabaseLayer.cluster.connect(name)
        try:
            with db.cursor() as cursor:
                cursor.execute(
                    "SELECT tablename FROM pg_tables "
                    "WHERE schemaname = current_schema()"
                )
                return cursor.fetchall()
        finally:
            db.close()

    def config(self, name):
        path = os.path.join(self.tmp, f"{name}.conf")
        with open(path, "w") as f:
            f.write(f"[database]\nurl: {DatabaseLayer.cluster.uri(name)}\n")
        return path

    def test_config_naming_an_empty_database(self):
        config = self.config(self.wrong)
        before = librarian_listing(self.state)
        for args in (
            ("verify",),
            ("verify", "--repair"),
            ("run-jobs",),
            ("run", "--sample"),
        ):
            self.assertRefused(
                lp_oci("--config", config, *args, "--state", self.state),
                f"database postgres:{self.wrong}",
                "holds no Launchpad schema",
            )
        self.assertEqual(before, librarian_listing(self.state))
        self.assertEqual([], self.tables(self.wrong))

    def test_empty_database_in_the_environment(self):
        uri = DatabaseLayer.cluster.uri(self.wrong)
        self.assertEveryCommandRefuses(LP_DATABASE_URI=uri)
        self.assertEqual([], self.tables(self.wrong))

    def test_database_with_schema_and_no_rows(self):
        uri = DatabaseLayer.cluster.uri(self.wrong)
        make_schema(uri)
        self.assertRepairKeepsEveryFile(LP_DATABASE_URI=uri)
        # The right database still accounts for every file.
        status, stdout, stderr = lp_oci(
            "verify",
            "--state",
            self.state,
            LP_DATABASE_URI=DatabaseLayer.cluster.uri(self.real),
        )
        self.assertEqual(0, status, stdout + stderr)
