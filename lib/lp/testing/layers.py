# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""zope.testrunner layers.

Each layer sets up only what it adds to its bases; zope.testrunner calls
the bases' methods itself, so every layer defines all four classmethods.

``BaseLayer``
    Component registrations from ``lp/configure.zcml``.
``DatabaseLayer`` (= ``ZopelessDatabaseLayer``, ``DatabaseFunctionalLayer``)
    A private PostgreSQL cluster, started once per run, holding a
    migrated database that the main store uses; emptied after each test.
``SQLiteDatabaseLayer``
    The same on an SQLite file, to run the same tests on both backends.
``LibrarianLayer``
    A librarian in a temporary directory, emptied after each test.
``LaunchpadZopelessLayer``, ``SQLiteLaunchpadZopelessLayer``
    A database and a librarian.
``RegistryLayer``, ``LaunchpadZopelessRegistryLayer``
    Three real OCI registries (``docker-registry``) on loopback:
    anonymous, htpasswd basic auth, and token auth with a token server
    the layer runs; without the binary the layer sets up nothing and
    its tests skip.
"""

__all__ = [
    "BaseLayer",
    "DatabaseFunctionalLayer",
    "DatabaseLayer",
    "LaunchpadZopelessLayer",
    "LaunchpadZopelessRegistryLayer",
    "LibrarianLayer",
    "RegistryLayer",
    "SQLiteDatabaseLayer",
    "SQLiteLaunchpadZopelessLayer",
    "ZopelessDatabaseLayer",
    "reset_database",
    "set_test_secrets_key",
]

import base64
import os
import shutil
import tempfile

import transaction

from lp.services.database.connection import (
    connect,
    disconnect,
    get_main_store,
)
from lp.services.database.migration import (
    REVISION_TABLE,
    backend_name,
    list_tables,
)
from lp.services.librarian.storage import configure_librarian
from lp.services.scripts import execute_zcml_for_scripts
from lp.testing.pgcluster import PgCluster


def reset_database(store):
    """Delete every row except the schema revisions, and commit."""
    transaction.abort()
    tables = [
        table
        for table in list_tables(store)
        if table.lower() != REVISION_TABLE.lower()
    ]
    if backend_name(store) == "postgres":
        store.execute(
            "TRUNCATE %s RESTART IDENTITY CASCADE" % ", ".join(tables),
            noresult=True,
        )
    else:
        # Check references only at commit, when every table is empty.
        store.execute("PRAGMA defer_foreign_keys = ON", noresult=True)
        for table in tables:
            store.execute(f"DELETE FROM {table}", noresult=True)
        store.execute("DELETE FROM sqlite_sequence", noresult=True)
    transaction.commit()


def set_test_secrets_key():
    """Configure a private key for registry secrets made for this run.

    As Launchpad's test configuration does, so that credentials can be
    sealed and opened; never a key of a real deployment.
    """
    from nacl.public import PrivateKey

    from lp.oci.model.ociregistrycredentials import (
        PRIVATE_KEY_ENV,
        PRIVATE_KEY_FILE_ENV,
        PUBLIC_KEY_ENV,
    )

    key = PrivateKey.generate()
    os.environ[PRIVATE_KEY_ENV] = base64.b64encode(bytes(key)).decode()
    os.environ.pop(PRIVATE_KEY_FILE_ENV, None)
    os.environ.pop(PUBLIC_KEY_ENV, None)


class BaseLayer:
    """Component registrations; every other layer builds on this."""

    @classmethod
    def setUp(cls):
        # As Launchpad's test runner: the testrunner configuration,
        # unless the run names another.
        os.environ.setdefault("LPCONFIG", "testrunner")
        execute_zcml_for_scripts()
        set_test_secrets_key()

    @classmethod
    def tearDown(cls):
        pass

    @classmethod
    def testSetUp(cls):
        pass

    @classmethod
    def testTearDown(cls):
        pass


class DatabaseLayer(BaseLayer):
    """A migrated PostgreSQL database, emptied after each test."""

    cluster = None
    uri = None
    dbname = "launchpad_ftest"

    @classmethod
    def setUp(cls):
        cls.cluster = PgCluster()
        cls.cluster.start()
        try:
            cls.cluster.createdb(cls.dbname)
            cls.uri = cls.cluster.uri(cls.dbname)
            connect(cls.uri)
        except BaseException:
            cls.cluster.stop()
            raise

    @classmethod
    def tearDown(cls):
        transaction.abort()
        disconnect()
        cls.cluster.stop()
        cls.cluster = cls.uri = None

    @classmethod
    def testSetUp(cls):
        transaction.abort()

    @classmethod
    def testTearDown(cls):
        reset_database(get_main_store())


class ZopelessDatabaseLayer(DatabaseLayer):
    """A database for code that runs outside the web application."""

    @classmethod
    def setUp(cls):
        pass

    @classmethod
    def tearDown(cls):
        pass

    @classmethod
    def testSetUp(cls):
        pass

    @classmethod
    def testTearDown(cls):
        pass


# There is no web application here; tests written for Launchpad's
# DatabaseFunctionalLayer get the database and registrations they need.
DatabaseFunctionalLayer = ZopelessDatabaseLayer


class SQLiteDatabaseLayer(BaseLayer):
    """A migrated SQLite database, emptied after each test."""

    directory = None
    uri = None

    @classmethod
    def setUp(cls):
        cls.directory = tempfile.mkdtemp(prefix="lp-sqlite-")
        cls.uri = "sqlite:" + os.path.join(cls.directory, "launchpad.db")
        connect(cls.uri)

    @classmethod
    def tearDown(cls):
        transaction.abort()
        disconnect()
        shutil.rmtree(cls.directory, ignore_errors=True)
        cls.directory = cls.uri = None

    @classmethod
    def testSetUp(cls):
        transaction.abort()

    @classmethod
    def testTearDown(cls):
        reset_database(get_main_store())


class LibrarianLayer(BaseLayer):
    """A librarian in a temporary directory, emptied after each test."""

    root = None
    storage = None

    @classmethod
    def setUp(cls):
        cls.root = tempfile.mkdtemp(prefix="lp-librarian-")
        cls.storage = configure_librarian(cls.root)

    @classmethod
    def tearDown(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        cls.root = cls.storage = None

    @classmethod
    def testSetUp(cls):
        pass

    @classmethod
    def testTearDown(cls):
        for name in os.listdir(cls.root):
            path = os.path.join(cls.root, name)
            if name != "incoming":
                shutil.rmtree(path, ignore_errors=True)
        for name in os.listdir(cls.storage.incoming):
            os.unlink(os.path.join(cls.storage.incoming, name))


class LaunchpadZopelessLayer(ZopelessDatabaseLayer, LibrarianLayer):
    """A PostgreSQL database and a librarian."""

    @classmethod
    def setUp(cls):
        pass

    @classmethod
    def tearDown(cls):
        pass

    @classmethod
    def testSetUp(cls):
        pass

    @classmethod
    def testTearDown(cls):
        pass


class SQLiteLaunchpadZopelessLayer(SQLiteDatabaseLayer, LibrarianLayer):
    """An SQLite database and a librarian."""

    @classmethod
    def setUp(cls):
        pass

    @classmethod
    def tearDown(cls):
        pass

    @classmethod
    def testSetUp(cls):
        pass

    @classmethod
    def testTearDown(cls):
        pass


class RegistryLayer(BaseLayer):
    """Real registries on loopback: anonymous, basic and token auth.

    ``anonymous`` and ``basic`` are `DockerRegistry` instances, or None
    where ``docker-registry`` is not installed (tests then skip:
    `lp.testing.registry`).  Repositories are not emptied between tests:
    each test pushes to names of its own.
    """

    anonymous = None
    basic = None
    token = None
    token_server = None
    basic_users = {"pusher": "registry-test-password"}

    @classmethod
    def setUp(cls):
        from lp.testing.registry import (
            DockerRegistry,
            TokenServer,
            docker_registry_path,
        )

        if docker_registry_path() is None:
            return
        try:
            cls.anonymous = DockerRegistry()
            cls.anonymous.start()
            cls.basic = DockerRegistry(users=cls.basic_users)
            cls.basic.start()
            cls.token_server = TokenServer(cls.basic_users)
            cls.token_server.start()
            cls.token = DockerRegistry(token_server=cls.token_server)
            cls.token.start()
        except BaseException:
            cls.tearDown()
            raise

    @classmethod
    def tearDown(cls):
        for server in (cls.anonymous, cls.basic, cls.token, cls.token_server):
            if server is not None:
                server.stop()
        cls.anonymous = cls.basic = cls.token = cls.token_server = None

    @classmethod
    def testSetUp(cls):
        pass

    @classmethod
    def testTearDown(cls):
        pass


class LaunchpadZopelessRegistryLayer(LaunchpadZopelessLayer, RegistryLayer):
    """A PostgreSQL database, a librarian and real registries."""

    @classmethod
    def setUp(cls):
        pass

    @classmethod
    def tearDown(cls):
        pass

    @classmethod
    def testSetUp(cls):
        pass

    @classmethod
    def testTearDown(cls):
        pass
