# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A private, throwaway PostgreSQL cluster for tests.

The cluster lives in a temporary directory and listens only on a unix
socket there.  PostgreSQL refuses to run as root, so when we are root
the server commands run as the ``postgres`` user (override with
``LP_TEST_PG_USER``).  The binaries are looked for in
``LP_TEST_PG_BIN``, then the newest ``/usr/lib/postgresql/*/bin``, then
``$PATH``.
"""

__all__ = [
    "PgCluster",
    "PgClusterError",
]

import glob
import os
import pwd
import shutil
import subprocess
import tempfile

import psycopg2


class PgClusterError(Exception):
    """The test cluster could not be set up."""


def _find_bin_dir():
    configured = os.environ.get("LP_TEST_PG_BIN")
    if configured:
        return configured
    candidates = glob.glob("/usr/lib/postgresql/*/bin")
    candidates.sort(key=lambda path: int(path.split("/")[-2].split(".")[0]))
    if candidates:
        return candidates[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise PgClusterError("Cannot find PostgreSQL's initdb; set LP_TEST_PG_BIN")


class PgCluster:
    """A PostgreSQL cluster in a temporary directory."""

    port = 5432
    superuser = "postgres"

    def __init__(self, bin_dir=None):
        self.bin_dir = bin_dir or _find_bin_dir()
        self.base_dir = None
        self.run_as = None
        if os.geteuid() == 0:
            self.run_as = os.environ.get("LP_TEST_PG_USER", "postgres")

    @property
    def data_dir(self):
        return os.path.join(self.base_dir, "data")

    @property
    def socket_dir(self):
        return self.base_dir

    def _run(self, program, *args):
        command = [os.path.join(self.bin_dir, program), *args]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.base_dir,
        )
        if result.returncode != 0:
            raise PgClusterError(
                "%s failed: %s"
                % (program, result.stdout.decode("utf-8", "replace"))
            )

    def start(self):
        """Create and start the cluster."""
        self.base_dir = tempfile.mkdtemp(prefix="lp-pgcluster-")
        try:
            if self.run_as is not None:
                user = pwd.getpwnam(self.run_as)
                os.chown(self.base_dir, user.pw_uid, user.pw_gid)
            self._run(
                "initdb",
                "-D",
                self.data_dir,
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            )
            # Durability is pointless for a throwaway cluster.
            options = " ".join(
                [
                    f"-k {self.socket_dir}",
                    "-c listen_addresses=''",
                    f"-p {self.port}",
                    "-F",
                    "-c full_page_writes=off",
                    "-c synchronous_commit=off",
                    "-c timezone=UTC",
                ]
            )
            self._run(
                "pg_ctl",
                "start",
                "-w",
                "-D",
                self.data_dir,
                "-l",
                os.path.join(self.base_dir, "postgresql.log"),
                "-o",
                options,
            )
        except BaseException:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
            raise

    def stop(self):
        """Stop the cluster and delete it."""
        if self.base_dir is None:
            return
        try:
            self._run(
                "pg_ctl", "stop", "-w", "-m", "fast", "-D", self.data_dir
            )
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None

    def connect(self, dbname="postgres"):
        """A raw psycopg2 connection (autocommit) to ``dbname``."""
        connection = psycopg2.connect(
            dbname=dbname,
            host=self.socket_dir,
            port=self.port,
            user=self.superuser,
        )
        connection.autocommit = True
        return connection

    def createdb(self, name, template=None):
        """Create the database ``name``, optionally from ``template``."""
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                sql = f'CREATE DATABASE "{name}"'
                if template is not None:
                    sql += f' TEMPLATE "{template}"'
                cursor.execute(sql)
        finally:
            connection.close()

    def uri(self, dbname):
        """The Storm URI of the database ``dbname`` in this cluster."""
        return "postgres:%s?host=%s&port=%d&user=%s" % (
            dbname,
            self.socket_dir,
            self.port,
            self.superuser,
        )
