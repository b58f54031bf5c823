# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Structured fuzzing of `gather` with hypothesis.

Each test mutates valid archives of every format, made in code by the
test archive builder (`lpbuildd.tests.fuzzing`): JSON documents (with
references kept consistent, to reach the parsing behind the digest
checks), members, tar headers and compressed streams.  The only
outcomes allowed for hostile input: a layout that verifies completely
(`assertValidLayout`), or one `OCIContentError` (the builder's
`ArchiveError`s included) with a one-line message and nothing left
behind.  `lp-oci gather` itself is held to the same through its `main`.

The example budget is small and derandomized in CI (a few seconds);
``make fuzz`` scales it up (see `fuzz_settings`).  Crashers found are
kept as regression tests in `TestFuzzCrashers`.
"""

__all__ = []

import io
import os
import shutil

from hypothesis import given
from hypothesis import strategies as st

from lpbuildd.ociimage.tests.helpers import GatherTestCase
from lpbuildd.tests.fuzzing import fuzz_settings, mutate_archive
from lpoci.cli import main
from ocitypes.errors import OCIContentError


class FuzzTestCase(GatherTestCase):
    def new_outdir(self):
        # Each example gets a parent of its own, removed afterwards, so
        # that one failing example does not fail all those after it.
        self._count += 1
        self.outparent = os.path.join(self.tmp, f"out-{self._count}")
        os.mkdir(self.outparent)
        return os.path.join(self.outparent, "layout")

    def assertOnlyAllowedOutcomes(self, data):
        outdir = self.new_outdir()
        try:
            self.gather(data, outdir=outdir)
        except OCIContentError as e:
            self.assertNotIn("\n", str(e))
            self.assertNothingLeft()
        else:
            self.assertValidLayout(outdir, lenient_platform=True)
        finally:
            shutil.rmtree(self.outparent, ignore_errors=True)


class TestFuzzGather(FuzzTestCase):
    @fuzz_settings(150)
    @given(st.randoms(use_true_random=False))
    def test_mutated_json_documents(self, rng):
        self.assertOnlyAllowedOutcomes(mutate_archive(rng, "documents"))

    @fuzz_settings(60)
    @given(st.randoms(use_true_random=False))
    def test_mutated_members(self, rng):
        self.assertOnlyAllowedOutcomes(mutate_archive(rng, "members"))

    @fuzz_settings(100)
    @given(st.randoms(use_true_random=False))
    def test_mutated_tar_headers(self, rng):
        self.assertOnlyAllowedOutcomes(mutate_archive(rng, "headers"))

    @fuzz_settings(80)
    @given(st.randoms(use_true_random=False))
    def test_mutated_compressed_streams(self, rng):
        self.assertOnlyAllowedOutcomes(mutate_archive(rng, "streams"))


class TestFuzzGatherCommand(FuzzTestCase):
    """`lp-oci gather`: exit 0, or 1 with one line and nothing left."""

    @fuzz_settings(30)
    @given(st.randoms(use_true_random=False), st.booleans())
    def test_mutated_archives(self, rng, as_json):
        archive = self.write_archive(mutate_archive(rng))
        outdir = self.new_outdir()
        stdout, stderr = io.StringIO(), io.StringIO()
        argv = ["gather", archive, "-o", outdir, "--jobs", "1"]
        status = main(argv + (["--json"] if as_json else []), stdout, stderr)
        try:
            if status == 0:
                self.assertEqual("", stderr.getvalue())
                self.assertValidLayout(outdir, lenient_platform=True)
            else:
                self.assertEqual(1, status)
                self.assertEqual("", stdout.getvalue())
                lines = stderr.getvalue().splitlines()
                self.assertEqual(1, len(lines), lines)
                self.assertTrue(lines[0].startswith("lp-oci: error: "), lines)
                self.assertNothingLeft()
        finally:
            shutil.rmtree(self.outparent, ignore_errors=True)
            os.unlink(archive)
