# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Slow clients cannot starve ``lp-oci serve``: real gunicorn, real sockets.

The server runs with the configuration's defaults (``[webservice]``:
its worker count and threads), as an operator would start it.
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests
from fixtures import TempDir

from lp.services.webservice.testing import free_port, make_state
from lp.testing import TestCase
from lp.testing.layers import BaseLayer

SLOW_CLIENTS = 8


class SlowClient(threading.Thread):
    """Sends a request's headers one line a second, never finishing."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port = port
        self.stop = stop
        self.lines_sent = 0

    def run(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), 5) as s:
                s.sendall(b"GET /api/devel/ HTTP/1.1\r\nHost: x\r\n")
                while not self.stop.wait(1.0):
                    s.sendall(b"X-Slow-%d: 1\r\n" % self.lines_sent)
                    self.lines_sent += 1
        except OSError:
            pass


class TestSlowClients(TestCase):
    layer = BaseLayer

    def startServer(self):
        state = self.useFixture(TempDir()).path
        # The database and librarian the server serves: made here, as
        # "lp-oci run" would have made them.
        env = make_state(state, LPCONFIG="development")
        port = free_port()
        log = tempfile.TemporaryFile()
        self.addCleanup(log.close)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lpoci.cli",
                "serve",
                "--state",
                state,
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.addCleanup(process.wait)
        self.addCleanup(process.terminate)
        url = f"http://127.0.0.1:{port}/api/devel/"
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url, timeout=10)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    self.fail("lp-oci serve did not start:\n" + log.read())
                time.sleep(0.1)
        # Let every worker load the application.
        for _ in range(10):
            requests.get(url, timeout=30)
        return port, url

    def test_normal_get_answered_beside_slow_clients(self):
        port, url = self.startServer()
        stop = threading.Event()
        clients = [SlowClient(port, stop) for _ in range(SLOW_CLIENTS)]
        for client in clients:
            client.start()
        self.addCleanup(stop.set)
        # Until every slow client has sent a few lines, each holding
        # what serves it.
        time.sleep(3)
        self.assertTrue(all(client.lines_sent >= 2 for client in clients))
        latencies = []
        for _ in range(5):
            started = time.monotonic()
            response = requests.get(url, timeout=30)
            latencies.append(time.monotonic() - started)
            self.assertEqual(200, response.status_code)
        # Before (gunicorn's sync workers, 2 of them): the first GET
        # waited for as long as the slow clients kept sending.
        self.assertLess(max(latencies), 1.0, latencies)
        if os.environ.get("LP_OCI_SLOW_CLIENTS_REPORT"):
            with open(os.environ["LP_OCI_SLOW_CLIENTS_REPORT"], "a") as f:
                f.write(
                    f"{SLOW_CLIENTS} slow clients: GET latencies "
                    f"{', '.join('%.3f' % x for x in latencies)} s\n"
                )
