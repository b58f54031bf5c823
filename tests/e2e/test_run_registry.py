# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""``lp-oci run --registry`` and ``lp-oci run-jobs`` against a registry."""

__all__ = []

import hashlib
import json
import os
import subprocess
import sys

from fixtures import TempDir

from lp.testing import TestCase
from lp.testing.layers import RegistryLayer
from lp.testing.registry import skopeo, skopeo_path
from ocitypes.testing import tool_missing

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


class TestRunRegistry(TestCase):
    layer = RegistryLayer

    def setUp(self):
        super().setUp()
        if RegistryLayer.anonymous is None:
            tool_missing(self, "docker-registry is not installed")
        self.state = os.path.join(self.useFixture(TempDir()).path, "var")

    def lp_oci(self, *args):
        env = dict(os.environ)
        for name in list(env):
            if name.startswith(("LP_DATABASE", "LP_LIBRARIAN", "LP_OCI_")):
                del env[name]
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [os.path.join(ROOT, "lib"), env.get("PYTHONPATH")])
        )
        return subprocess.run(
            [sys.executable, "-m", "lpoci.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    def run_sample(self, registry, image, *args):
        return self.lp_oci(
            "run",
            "--sample",
            "--state",
            self.state,
            "--registry",
            registry.url,
            "--image",
            image,
            *args,
        )

    def test_push_then_mount(self):
        registry = RegistryLayer.anonymous
        first = self.run_sample(registry, "cli/first", "--json")
        self.assertEqual(0, first.returncode, first.stderr)
        report = json.loads(first.stdout)
        pushed = report["registry"]
        self.assertEqual(
            {
                "status",
                "error_summary",
                "due",
                "registry",
                "repository",
                "tags",
                "index_digest",
                "pull",
                "blobs_uploaded",
                "blobs_mounted",
                "blobs_existing",
                "bytes_uploaded",
                "manifests",
                "seconds",
            },
            set(pushed),
        )
        # Where it went: the tag's index is the one pushed.
        self.assertEqual("COMPLETED", pushed["status"])
        self.assertEqual(registry.host, pushed["registry"])
        self.assertEqual("cli/first", pushed["repository"])
        self.assertEqual(["edge"], pushed["tags"])
        self.assertEqual(
            f"{registry.host}/cli/first@{pushed['index_digest']}",
            pushed["pull"],
        )
        self.assertEqual(
            ["gather", "fetch", "processing", "push"], list(report["phases"])
        )
        self.assertEqual(
            pushed["bytes_uploaded"], report["phases"]["push"]["bytes"]
        )
        self.assertEqual("cli-first", report["recipe"])
        (image,) = report["images"]
        self.assertEqual(
            [
                {
                    "digest": image["manifest_digest"],
                    "platform": "linux/amd64",
                }
            ],
            pushed["manifests"],
        )
        self.assertEqual(4, pushed["blobs_uploaded"])
        layer_bytes = sum(layer["size"] for layer in image["layers"])
        self.assertTrue(pushed["bytes_uploaded"] > layer_bytes)
        first_index_digest = pushed["index_digest"]
        # The same image to a second repository: every layer mounted.
        second = self.run_sample(
            registry, "cli/second", "--json", "--tag", "stable"
        )
        self.assertEqual(0, second.returncode, second.stderr)
        pushed = json.loads(second.stdout)["registry"]
        self.assertEqual(3, pushed["blobs_mounted"])
        self.assertEqual(1, pushed["blobs_uploaded"])
        self.assertEqual(["stable"], pushed["tags"])
        self.assertTrue(pushed["bytes_uploaded"] < 1000)
        # skopeo reads the first push by its digest.
        if skopeo_path() is None:
            tool_missing(self, "skopeo is not installed")
        raw = skopeo(
            "inspect",
            "--tls-verify=false",
            "--raw",
            "docker://%s/cli/first:edge" % registry.host,
        )
        self.assertEqual(
            first_index_digest, "sha256:" + hashlib.sha256(raw).hexdigest()
        )
        raw = skopeo(
            "inspect",
            "--tls-verify=false",
            "--raw",
            "docker://%s/cli/first@%s"
            % (registry.host, image["manifest_digest"]),
        )
        self.assertEqual(
            image["manifest_digest"],
            "sha256:" + hashlib.sha256(raw).hexdigest(),
        )

    def test_credentials(self):
        registry = RegistryLayer.basic
        user, password = next(iter(RegistryLayer.basic_users.items()))
        directory = os.path.dirname(self.state)
        good = os.path.join(directory, "good.json")
        with open(good, "w") as f:
            json.dump({"username": user, "password": password}, f)
        result = self.run_sample(registry, "cli/auth", "--credentials", good)
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn(
            f"registry: {registry.host}, repository cli/auth, tags edge, "
            "index sha256:",
            result.stdout,
        )
        self.assertIn("\n  4 blobs uploaded", result.stdout)
        self.assertIn(
            f"\n  pull: {registry.host}/cli/auth@sha256:", result.stdout
        )
        # A push phase line, after the others.
        self.assertEqual(
            ["gather", "fetch", "processing", "push"],
            [line.split(":")[0] for line in result.stderr.splitlines()],
        )
        # The key was made for this state; the password is not stored.
        key = os.path.join(self.state, "registry-secrets.key")
        self.assertEqual(0o600, os.stat(key).st_mode & 0o777)
        with open(os.path.join(self.state, "launchpad.db"), "rb") as f:
            self.assertNotIn(password.encode(), f.read())
        bad = os.path.join(directory, "bad.json")
        with open(bad, "w") as f:
            json.dump({"username": user, "password": "not-the-password"}, f)
        result = self.run_sample(
            registry, "cli/auth", "--credentials", bad, "-q"
        )
        self.assertEqual(1, result.returncode)
        # Exactly one line: no log record of the job's first.
        lines = result.stderr.splitlines()
        self.assertEqual(1, len(lines), result.stderr)
        self.assertTrue(
            lines[0].startswith("lp-oci: error: registry push failed"),
            result.stderr,
        )
        self.assertIn("\n  not pushed: FAILED\n", result.stdout)
        self.assertNotIn("not-the-password", result.stderr + result.stdout)
        result = self.run_sample(
            registry, "cli/auth", "--credentials", bad, "--json"
        )
        self.assertEqual(1, result.returncode)
        self.assertEqual(1, len(result.stderr.splitlines()), result.stderr)
        pushed = json.loads(result.stdout)["registry"]
        self.assertEqual("FAILED", pushed["status"])
        self.assertIsNone(pushed["index_digest"])
        self.assertIn(pushed["error_summary"], result.stderr)

    def test_unreachable_then_run_jobs(self):
        result = self.lp_oci(
            "run",
            "--sample",
            "--state",
            self.state,
            "--registry",
            "http://127.0.0.1:1",
            "--image",
            "cli/nowhere",
            "--json",
        )
        self.assertEqual(1, result.returncode)
        # One line, and the run's result on stdout with the push's.
        (line,) = result.stderr.splitlines()
        self.assertRegex(
            line,
            r"\Alp-oci: error: registry push failed: .* \(lp-oci run-jobs "
            r"will try again: due \S+ \S+ UTC \(in [0-9a-z ]+\)\)\Z",
        )
        report = json.loads(result.stdout)
        pushed = report["registry"]
        self.assertEqual("WAITING", pushed["status"])
        self.assertEqual("127.0.0.1:1", pushed["registry"])
        self.assertEqual("cli/nowhere", pushed["repository"])
        self.assertEqual(["edge"], pushed["tags"])
        self.assertIsNone(pushed["index_digest"])
        self.assertIsNotNone(pushed["due"])
        # Not due yet: run-jobs says when it is.
        jobs = self.lp_oci("run-jobs", "--state", self.state)
        self.assertEqual(0, jobs.returncode, jobs.stderr)
        lines = jobs.stdout.splitlines()
        self.assertEqual("no registry upload jobs ready", lines[0])
        self.assertRegex(
            lines.pop(1),
            rf"\Abuild {report['build_id']}: push waiting, due "
            r"\S+ \S+ UTC \(in [0-9a-z ]+\) \(last attempt: .*\)\Z",
        )
        # run-jobs also stored the build's archive checksums, which
        # upload processing no longer computes.
        self.assertEqual(
            ["oci", "docker"], [line.split()[2] for line in lines[1:]]
        )
        for line in lines[1:]:
            self.assertRegex(
                line,
                r"\Abuild \d+: \w+ archive \d+ bytes, sha256 [0-9a-f]{64}\Z",
            )
        jobs = self.lp_oci("run-jobs", "--state", self.state, "--json")
        self.assertEqual(0, jobs.returncode, jobs.stderr)
        self.assertEqual(
            {
                "jobs": [],
                "waiting": [
                    {
                        "build_id": report["build_id"],
                        "due": pushed["due"],
                        "error_summary": pushed["error_summary"],
                    }
                ],
                "archive_checksums": [],
            },
            json.loads(jobs.stdout),
        )

    def test_registry_needs_image(self):
        result = self.lp_oci(
            "run", "--sample", "--state", self.state, "--registry", "http://x"
        )
        self.assertEqual(2, result.returncode)
