# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Structured fuzzing of `lp-oci gather` (see
`lpbuildd.ociimage.tests.test_fuzz` for the mutations)."""

__all__ = []

import io
import os
import shutil

from hypothesis import given
from hypothesis import strategies as st

from lpbuildd.ociimage.tests.helpers import FuzzGatherTestCase
from lpbuildd.tests.fuzzing import fuzz_settings, mutate_archive
from lpoci.cli import main


class TestFuzzGatherCommand(FuzzGatherTestCase):
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
