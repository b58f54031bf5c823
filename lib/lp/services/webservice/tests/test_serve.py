# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""``lp-oci serve --embedded``: the single-process mode."""

import os
import subprocess
import sys
import time

import requests
from fixtures import TempDir

from lp.services.webservice.testing import CHILD_ENV, free_port
from lp.testing import TestCase
from lp.testing.layers import BaseLayer


class TestEmbeddedServe(TestCase):
    layer = BaseLayer

    def test_serves_the_web_service(self):
        state = self.useFixture(TempDir()).path
        port = free_port()
        env = dict(CHILD_ENV)
        for name in ("LP_DATABASE_URI", "LP_LIBRARIAN_ROOT", "LP_ROOT_URL"):
            env.pop(name, None)
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
            stderr=subprocess.PIPE,
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
                self.assertIsNone(process.poll(), process.stderr.read())
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.1)
        self.assertEqual(200, response.status_code)
        self.assertEqual(
            url + "oci_recipe_builds",
            response.json()["oci_recipe_builds_collection_link"],
        )
        self.assertTrue(os.path.exists(os.path.join(state, "launchpad.db")))
