# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Every atheris harness runs, without atheris, on its seeds and on a
few fixed inputs, and finds nothing: so that ``make fuzz`` cannot rot
between runs, and so that a crasher kept here as bytes stays fixed.

(The bounded fuzzing in CI is the hypothesis suites; coverage-guided
runs take minutes and depend on timing, so they are left to
``make fuzz``.)
"""

__all__ = []

import base64
import importlib
import random

from testtools import TestCase

from fuzz import TARGETS

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


class TestHarnesses(TestCase):
    def run_target(self, target, inputs):
        module = importlib.import_module(f"fuzz.{target}")
        module.prepare()
        for data in inputs:
            module.test_one_input(data)

    def fixed_inputs(self, seed, count=15, size=400):
        rng = random.Random(seed)
        return [rng.randbytes(rng.randrange(size)) for _ in range(count)]

    def test_targets(self):
        self.assertEqual(("gather", "ociupload", "registry"), TARGETS)

    def test_gather(self):
        module = importlib.import_module("fuzz.gather")
        self.run_target("gather", module.seeds() + self.fixed_inputs(1))

    def test_ociupload(self):
        module = importlib.import_module("fuzz.ociupload")
        self.run_target("ociupload", module.seeds() + self.fixed_inputs(2))

    def test_registry(self):
        module = importlib.import_module("fuzz.registry")
        self.run_target("registry", module.seeds() + self.fixed_inputs(3))

    def test_crashers(self):
        for target, inputs in CRASHERS.items():
            self.run_target(target, inputs)
