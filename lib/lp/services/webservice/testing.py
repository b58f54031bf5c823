# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A test layer running ``lp-oci serve`` (gunicorn) on loopback.

The server uses the layer's SQLite database and librarian: tests create
objects with the factory, commit, and ask the server over real HTTP.
"""

__all__ = [
    "ACCOUNTS",
    "CHILD_ENV",
    "WebServiceLayer",
    "free_port",
    "make_state",
]

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import lp
from lp.services.webapp.wsgi import hash_password
from lp.testing.layers import SQLiteLaunchpadZopelessLayer

# name: (password, admin); the accounts file stores HASHED_ACCOUNTS'
# passwords hashed, the others plain.
HASHED_ACCOUNTS = ("bob",)
ACCOUNTS = {
    "alice": ("alice-secret", False),
    "bob": ("bob-secret", False),
    "admin": ("admin-secret", True),
}

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(lp.__file__)))
CHILD_ENV = dict(
    os.environ,
    PYTHONPATH=os.pathsep.join(
        filter(
            None,
            [_ROOT, os.path.dirname(_ROOT), os.environ.get("PYTHONPATH")],
        )
    ),
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_state(state, **env):
    """Create a state's database in ``state``, as ``lp-oci run`` would.

    In a child process, in `CHILD_ENV` with ``env`` and without the
    variables that would name another database, librarian or root URL.

    :return: That environment, for the processes that use the state.
    """
    env = dict(CHILD_ENV, **env)
    for name in ("LP_DATABASE_URI", "LP_LIBRARIAN_ROOT", "LP_ROOT_URL"):
        env.pop(name, None)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from lp.services.scripts import setup_services; "
            "setup_services(sys.argv[1], schema='create')",
            state,
        ],
        env=env,
        check=True,
    )
    return env


class WebServiceLayer(SQLiteLaunchpadZopelessLayer):
    """``lp-oci serve`` under gunicorn, on the layer's database."""

    process = None
    root_url = None
    directory = None
    tmp = None

    @classmethod
    def setUp(cls):
        cls.directory = tempfile.mkdtemp(prefix="lp-webservice-")
        # The server's temporary directory, so tests can see that it
        # leaves nothing there.
        cls.tmp = os.path.join(cls.directory, "tmp")
        os.mkdir(cls.tmp)
        accounts = os.path.join(cls.directory, "accounts")
        with open(accounts, "w") as f:
            for name, (password, admin) in ACCOUNTS.items():
                if name in HASHED_ACCOUNTS:
                    # Few iterations: the tests check the scheme, not
                    # its cost.
                    password = hash_password(password, iterations=1000)
                f.write(f"{name}:{password}{':admin' if admin else ''}\n")
        port = free_port()
        cls.root_url = f"http://127.0.0.1:{port}/"
        env = dict(
            CHILD_ENV,
            LP_DATABASE_URI=SQLiteLaunchpadZopelessLayer.uri,
            LP_LIBRARIAN_ROOT=SQLiteLaunchpadZopelessLayer.root,
            TMPDIR=cls.tmp,
        )
        cls.log = open(os.path.join(cls.directory, "server.log"), "wb")
        cls.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lpoci.cli",
                "serve",
                "--state",
                cls.directory,
                "--port",
                str(port),
                "--workers",
                "1",
                "--accounts",
                accounts,
            ],
            env=env,
            stdout=cls.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if cls.process.poll() is not None or (
                    time.monotonic() > deadline
                ):
                    cls.tearDown()
                    raise RuntimeError("lp-oci serve did not start")
                time.sleep(0.1)
        # Make sure a worker has loaded the application.
        import urllib.request

        urllib.request.urlopen(cls.root_url + "api/devel/", timeout=60).read()
        os.environ["LP_ROOT_URL"] = cls.root_url

    @classmethod
    def tearDown(cls):
        if cls.process is not None:
            cls.process.send_signal(signal.SIGTERM)
            try:
                cls.process.wait(30)
            except subprocess.TimeoutExpired:
                cls.process.kill()
                cls.process.wait()
            cls.process = None
            cls.log.close()
        if cls.directory is not None:
            shutil.rmtree(cls.directory, ignore_errors=True)
            cls.directory = None
        os.environ.pop("LP_ROOT_URL", None)

    @classmethod
    def testSetUp(cls):
        pass

    @classmethod
    def testTearDown(cls):
        pass
