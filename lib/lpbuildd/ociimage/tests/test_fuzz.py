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
behind.  `lp-oci gather` itself is held to the same in
`lpoci.tests.test_gather_fuzz`.

The example budget is small and derandomized in CI (a few seconds);
``make fuzz`` scales it up (see `fuzz_settings`).  Crashers found are
kept as regression tests next to the code they exercise.
"""

__all__ = []


from hypothesis import given
from hypothesis import strategies as st

from lpbuildd.ociimage.tests.helpers import FuzzGatherTestCase
from lpbuildd.tests.fuzzing import fuzz_settings, mutate_archive


class TestFuzzGather(FuzzGatherTestCase):
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
