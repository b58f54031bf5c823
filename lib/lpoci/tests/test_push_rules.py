# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A waiting push keeps its destination.

``lp-oci run`` of another image (or to another registry) replaces the
recipe's push rules; while a registry upload job of the recipe has not
run, that would lose its push, so the run is refused with one line.
"""

__all__ = []

import os

import transaction
from fixtures import TempDir
from testtools import TestCase

from lp.buildmaster.enums import BuildStatus
from lp.oci.model.ocirecipebuildjob import OCIRegistryUploadJob
from lp.services.webservice.testing import free_port
from lp.testing import TestCaseWithFactory
from lp.testing.layers import SQLiteLaunchpadZopelessLayer
from lpoci.registry import (
    RegistryRunError,
    configure_push_rule,
    remove_push_rule,
    waiting_pushes,
)
from lpoci.tests.test_state_database import lp_oci


class TestWaitingPushKeepsItsRule(TestCaseWithFactory):
    layer = SQLiteLaunchpadZopelessLayer

    def makeWaitingPush(self):
        build = self.factory.makeOCIRecipeBuild(status=BuildStatus.FULLYBUILT)
        rule = self.factory.makeOCIPushRule(recipe=build.recipe)
        self.factory.makeOCILayoutFiles(build=build)
        job = OCIRegistryUploadJob.create(build)
        transaction.commit()
        return job, rule

    def test_remove_refused_while_a_push_waits(self):
        job, rule = self.makeWaitingPush()
        self.assertEqual(
            [job.context], [j.context for j in waiting_pushes(rule.recipe)]
        )
        error = self.assertRaises(RegistryRunError, remove_push_rule, rule)
        self.assertIn(f"build {job.build.id}'s push", str(error))
        self.assertIn("still waiting", str(error))
        self.assertIn("lp-oci run-jobs", str(error))
        self.assertEqual(1, len(str(error).splitlines()))
        self.assertEqual([rule], list(rule.recipe.push_rules))

    def test_configure_another_image_refused_while_a_push_waits(self):
        job, rule = self.makeWaitingPush()
        self.assertRaises(
            RegistryRunError,
            configure_push_rule,
            rule.recipe,
            rule.registry_url,
            "another/image",
        )
        transaction.abort()
        self.assertEqual([rule], list(rule.recipe.push_rules))

    def test_removed_once_the_push_is_done(self):
        job, rule = self.makeWaitingPush()
        recipe = rule.recipe
        job.job.start()
        job.job.complete()
        transaction.commit()
        remove_push_rule(rule)
        transaction.commit()
        self.assertEqual([], list(recipe.push_rules))


class TestRunKeepsAWaitingPush(TestCase):
    """The issue's sequence, with real processes."""

    def test_run_of_another_image_refused_while_a_push_waits(self):
        state = os.path.join(self.useFixture(TempDir()).path, "state")
        # Nothing listens there: the push fails transiently and waits.
        registry = f"http://127.0.0.1:{free_port()}"
        status, _, stderr = lp_oci(
            "run",
            "--sample",
            "-q",
            "--state",
            state,
            "--registry",
            registry,
            "--image",
            "lp-oci/first",
        )
        self.assertEqual(1, status)
        self.assertIn("lp-oci run-jobs will try again", stderr)
        # Another image is another recipe (one per image name): its run
        # leaves the waiting push, its recipe and its rule alone.
        status, stdout, stderr = lp_oci(
            "run", "--sample", "-q", "--state", state
        )
        self.assertEqual(0, status, stderr)
        status, stdout, _ = lp_oci("list", "--state", state)
        self.assertEqual(2, len(stdout.splitlines()), stdout)
        (first,) = [line for line in stdout.splitlines() if "first" in line]
        self.assertIn("registry:PENDING", first)
        # Another image asked into the waiting push's recipe would remove
        # or replace its rule: refused.
        for args in (
            (),
            ("--registry", registry, "--image", "lp-oci/second"),
        ):
            status, stdout, stderr = lp_oci(
                "run",
                "--sample",
                "-q",
                "--state",
                state,
                "--recipe",
                "lp-oci-first",
                *args,
            )
            self.assertEqual(1, status)
            self.assertEqual("", stdout)
            self.assertEqual(
                f"lp-oci: error: build 1's push to {registry} lp-oci/first "
                "is still waiting",
                stderr.split(", due ")[0],
            )
            self.assertIn("(run lp-oci run-jobs first)\n", stderr)
        status, stdout, _ = lp_oci("list", "--state", state)
        self.assertEqual(2, len(stdout.splitlines()), stdout)
        (first,) = [line for line in stdout.splitlines() if "first" in line]
        self.assertIn("registry:PENDING", first)
