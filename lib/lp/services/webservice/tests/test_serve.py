# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""``lp-oci serve --embedded``: the single-process mode."""

import os
import subprocess
import sys
import time

import requests
from fixtures import TempDir

from lp.services.webservice.testing import CHILD_ENV, free_port, make_state
from lp.testing import TestCase
from lp.testing.layers import BaseLayer


def run_serve(state, *args, env=CHILD_ENV):
    """Run ``lp-oci serve`` on ``state``, for one that exits at once."""
    return subprocess.run(
        [sys.executable, "-m", "lpoci.cli", "serve", "--state", state]
        + ["--port", str(free_port()), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


class TestEmbeddedServe(TestCase):
    layer = BaseLayer

    def test_state_without_database_is_refused(self):
        # Not created (only lp-oci run does), nor left to workers that
        # would fail to boot: one line, before serving.
        state = self.useFixture(TempDir()).path
        env = dict(CHILD_ENV)
        for name in ("LP_DATABASE_URI", "LP_LIBRARIAN_ROOT", "LP_ROOT_URL"):
            env.pop(name, None)
        result = run_serve(state, env=env)
        self.assertEqual(1, result.returncode)
        self.assertEqual(
            f"lp-oci: error: database sqlite:{state}/launchpad.db: no such "
            "file (lp-oci run creates a state)\n",
            result.stderr,
        )
        self.assertEqual([], os.listdir(state))

    def test_serves_the_web_service(self):
        state = self.useFixture(TempDir()).path
        port = free_port()
        # Only lp-oci run creates a state's database.
        env = make_state(state)
        log_path = os.path.join(state, "serve.log")
        log = open(log_path, "wb")
        self.addCleanup(log.close)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lpoci.cli",
                "serve",
                "--embedded",
                "--state",
                state,
                "--port",
                str(port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        self.addCleanup(process.wait)
        self.addCleanup(process.kill)
        url = f"http://127.0.0.1:{port}/api/devel/"
        deadline = time.monotonic() + 60
        while True:
            try:
                response = requests.get(url, timeout=10)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    with open(log_path) as f:
                        self.fail("lp-oci serve did not start:\n" + f.read())
                time.sleep(0.1)
        self.assertEqual(200, response.status_code)
        self.assertEqual(
            url + "oci_recipe_builds",
            response.json()["oci_recipe_builds_collection_link"],
        )
        self.assertTrue(os.path.exists(os.path.join(state, "launchpad.db")))

    def test_bad_accounts_file_refused_before_serving(self):
        # Before, each gunicorn worker died on it with a traceback.
        state = self.useFixture(TempDir()).path
        accounts = os.path.join(state, "accounts")
        with open(accounts, "w") as f:
            f.write("alice:pbkdf2-sha256$1000$c2FsdHNhbHQ$AAAA\n")
        for path, message in (
            (accounts, f"{accounts}:1: salt too short or hash not 32 bytes"),
            (
                os.path.join(state, "missing"),
                "%s: No such file or directory"
                % os.path.join(state, "missing"),
            ),
        ):
            result = run_serve(state, "--accounts", path)
            self.assertEqual(
                (1, "", f"lp-oci: error: {message}\n"),
                (result.returncode, result.stdout, result.stderr),
            )

    def test_missing_state_refused(self):
        # Before, serve made the directory and served an empty state.
        state = os.path.join(self.useFixture(TempDir()).path, "typo")
        for extra in ([], ["--embedded"]):
            result = run_serve(state, *extra)
            self.assertEqual(
                (
                    1,
                    "",
                    f"lp-oci: error: no state directory {state} (lp-oci run "
                    "makes one; give it with --state)\n",
                ),
                (result.returncode, result.stdout, result.stderr),
            )
            self.assertFalse(os.path.exists(state))
