# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Every atheris harness runs, without atheris, on its seeds and on a
few fixed inputs, and finds nothing; its seeds reach the reader it
fuzzes, and a bug planted in that reader (or in what gather leaves) is
reported: so that ``make fuzz`` cannot rot between runs or pass while
testing nothing, and so that a crasher kept here as bytes stays fixed.

(The bounded fuzzing in CI is the hypothesis suites; coverage-guided
runs take minutes and depend on timing, so they are left to
``make fuzz``.)
"""

__all__ = []

import base64
import importlib
import os
import random

from fixtures import MockPatch
from testtools import TestCase

import fuzz
import lpoci.cli
from fuzz import TARGETS
from lp.oci.interfaces.ociregistryclient import OCIRegistryError
from lp.oci.model.ocilayout import OCILayoutError
from lp.oci.tests import uploadfuzzing

# Inputs atheris found that crashed a harness, kept as regression
# tests: {target: [input bytes]}.
CRASHERS = {
    # Not a reader bug: an OCI manifest kept byte-exact whose config
    # descriptor has no mediaType (accepted by both sides' readers) made
    # the harness' own layout check raise KeyError.
    "gather": [
        base64.b64decode(
            "AAUGAIsJYmwqb2JzYTI1Ni8zM2ExMDhmZTVhMDUMMDAzMTE0M2M1ODhjYWMxMDhm"
            "ZTVhMDUMMDAzMTE0M2M1ODhjYWNmMzNkYThjlM2bzy0xMjc0NTg5JTo7PD0+Pw=="
        )
    ],
    # parse_keqv_list raised ValueError on a challenge parameter
    # without "=" (BearerTokenRegistryClient.parseAuthInstructions).
    "registry": [
        base64.b64decode(
            "AQAsAgMEBQYHCAkKCgsMDQ4PEBHvEwEAAAAAAAABHB0eHyA1NiEiKycoKSorLC0u"
            "LzAxMjM0NTY3ODk6Ozw9Pj8="
        )
    ],
}


FUZZ_DIR = os.path.dirname(fuzz.__file__)
NOT_HARNESSES = ("__init__.py", "__main__.py", "common.py")


def harness(target):
    module = importlib.import_module(f"fuzz.{target}")
    module.prepare()
    return module


def fixed_inputs(seed, count=15, size=400):
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(size)) for _ in range(count)]


class TestHarnesses(TestCase):
    """Each harness runs on its seeds and fixed inputs, finds nothing,
    reaches the reader it fuzzes, and reports a planted bug in it."""

    def test_every_harness_is_a_target(self):
        # make fuzz runs every harness under fuzz/, and each
        # instruments modules that exist.
        names = sorted(
            name[: -len(".py")]
            for name in os.listdir(FUZZ_DIR)
            if name.endswith(".py") and name not in NOT_HARNESSES
        )
        self.assertEqual(names, sorted(TARGETS))
        for target in TARGETS:
            for name in harness(target).INSTRUMENT:
                importlib.import_module(name)

    def recordStatuses(self):
        """Record the exit status of every ``lp-oci gather`` the
        harness runs."""
        statuses = []
        real_main = lpoci.cli.main

        def main(argv, stdout, stderr):
            status = real_main(argv, stdout, stderr)
            statuses.append(status)
            return status

        self.useFixture(MockPatch("lpoci.cli.main", main))
        return statuses

    def test_gather(self):
        module = harness("gather")
        statuses = self.recordStatuses()
        seeds = module.seeds()
        for data in seeds + fixed_inputs(1):
            module.test_one_input(data)
        # Every valid archive among the seeds is gathered; mutations
        # are refused.
        raw = [data[0] >= module.RAW for data in seeds]
        self.assertEqual([0] * raw.count(True), statuses[: raw.count(True)])
        self.assertIn(1, statuses)

    def plantInGather(self, damage):
        """Run gather's harness on a valid archive, ``damage(argv)``
        applied after each gather."""
        module = harness("gather")
        real_main = lpoci.cli.main

        def main(argv, stdout, stderr):
            status = real_main(argv, stdout, stderr)
            return damage(argv[argv.index("-o") + 1], stderr) or status

        self.useFixture(MockPatch("lpoci.cli.main", main))
        return self.assertRaises(
            AssertionError, module.test_one_input, module.seeds()[0]
        )

    def test_gather_reports_a_damaged_blob(self):
        def damage(outdir, stderr):
            blobs = os.path.join(outdir, "blobs", "sha256")
            path = os.path.join(blobs, sorted(os.listdir(blobs))[0])
            with open(path, "ab") as f:
                f.write(b"!")

        self.plantInGather(damage)

    def test_gather_reports_debris(self):
        def damage(outdir, stderr):
            open(outdir + ".tmp", "w").close()

        error = self.plantInGather(damage)
        self.assertIn("left behind", str(error))

    def test_gather_reports_a_traceback(self):
        def damage(outdir, stderr):
            stderr.write("Traceback:\nlp-oci: error: boom\n")
            return 1

        self.plantInGather(damage)

    def test_ociupload(self):
        module = harness("ociupload")
        results = []
        real_read = uploadfuzzing.read_upload

        def read_upload(directory):
            try:
                results.append(real_read(directory))
            except Exception as e:
                results.append(e)
                raise
            return results[-1]

        self.useFixture(
            MockPatch("lp.oci.tests.uploadfuzzing.read_upload", read_upload)
        )
        seeds = module.seeds()
        for data in seeds + fixed_inputs(2):
            module.test_one_input(data)
        # The first seed, the first base upload's own index, is read to
        # its images; damaged uploads are refused.
        self.assertGreaterEqual(seeds[0][0], module.RAW)
        self.assertIsInstance(results[0], list)
        self.assertNotEqual([], results[0])
        self.assertTrue(any(isinstance(r, Exception) for r in results))

    def test_ociupload_reports_an_unexpected_exception(self):
        module = harness("ociupload")
        self.useFixture(
            MockPatch(
                "lp.oci.model.ocilayout.parse_manifest",
                side_effect=KeyError("config"),
            )
        )
        self.assertRaises(KeyError, module.test_one_input, module.seeds()[0])

    def test_ociupload_reports_a_message_of_two_lines(self):
        module = harness("ociupload")
        self.useFixture(
            MockPatch(
                "lp.oci.model.ocilayout.parse_manifest",
                side_effect=OCILayoutError("bad\nmanifest"),
            )
        )
        self.assertRaises(
            AssertionError, module.test_one_input, module.seeds()[0]
        )

    def test_registry(self):
        module = harness("registry")
        for data in module.seeds() + fixed_inputs(3):
            module.test_one_input(data)

    def test_registry_reports_an_unexpected_exception(self):
        # Each seed reaches the client: a bug planted where it starts
        # (the manifest list merge, the token challenge) escapes.
        module = harness("registry")
        merge, token = module.seeds()
        for name, data in (
            (
                "lp.oci.model.ociregistryclient.OCIRegistryClient"
                "._getCurrentRegistryManifest",
                merge,
            ),
            (
                "lp.oci.model.ociregistryhttp.BearerTokenRegistryClient"
                ".parseAuthInstructions",
                token,
            ),
        ):
            with MockPatch(name, side_effect=ValueError("planted")):
                self.assertRaises(ValueError, module.test_one_input, data)
            # What its callers handle is not a crash.
            with MockPatch(name, side_effect=OCIRegistryError("handled")):
                module.test_one_input(data)

    def test_crashers(self):
        for target, inputs in CRASHERS.items():
            module = harness(target)
            for data in inputs:
                module.test_one_input(data)
