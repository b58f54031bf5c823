# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""``lp-oci list`` and ``lp-oci show`` on a state ``lp-oci run`` made."""

import json
import os
import subprocess
import sys

from fixtures import TempDir

from lp.services.webservice.testing import CHILD_ENV
from lp.testing import TestCase
from lp.testing.layers import BaseLayer


class TestListAndShow(TestCase):
    layer = BaseLayer

    def lp_oci(self, *args):
        env = dict(CHILD_ENV)
        for name in ("LP_DATABASE_URI", "LP_LIBRARIAN_ROOT", "LP_ROOT_URL"):
            env.pop(name, None)
        return subprocess.run(
            [sys.executable, "-m", "lpoci.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def test_list_and_show(self):
        state = os.path.join(self.useFixture(TempDir()).path, "state")
        run = self.lp_oci("run", "--sample", "--state", state, "--json")
        self.assertEqual(0, run.returncode, run.stderr)
        build_id = json.loads(run.stdout)["build_id"]
        listing = self.lp_oci("list", "--state", state, "--json")
        self.assertEqual(0, listing.returncode, listing.stderr)
        (build,) = json.loads(listing.stdout)["builds"]
        self.assertEqual(build_id, build["build_id"])
        self.assertEqual("FULLYBUILT", build["status"])
        self.assertEqual("sample", build["recipe"])
        text = self.lp_oci("list", "--state", state)
        self.assertIn(f"{build_id} FULLYBUILT", " ".join(text.stdout.split()))
        shown = self.lp_oci("show", str(build_id), "--state", state, "--json")
        self.assertEqual(0, shown.returncode, shown.stderr)
        details = json.loads(shown.stdout)
        self.assertEqual(
            json.loads(run.stdout)["images"][0]["manifest_digest"],
            details["images"][0]["manifest_digest"],
        )
        self.assertIn("index", [f["kind"] for f in details["files"]])
        self.assertIsNone(details["failure_reason"])
        text = self.lp_oci("show", str(build_id), "--state", state)
        self.assertIn("status: FULLYBUILT\n", text.stdout)
        # One line for what is not there.
        missing = self.lp_oci("show", "99", "--state", state)
        self.assertEqual(
            (1, f"lp-oci: error: no build 99 in {state}\n"),
            (missing.returncode, missing.stderr),
        )
        nowhere = os.path.join(state, "nope")
        missing = self.lp_oci("list", "--state", nowhere)
        self.assertEqual(1, missing.returncode)
        self.assertEqual(1, len(missing.stderr.splitlines()))
        self.assertFalse(os.path.exists(nowhere))
