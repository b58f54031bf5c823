# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for canonical URLs and proxied librarian files."""

__all__ = []

from fixtures import EnvironmentVariable

from lp.services.librarian.browser import ProxiedLibraryFileAlias
from lp.services.webapp.publisher import canonical_url
from lp.testing import TestCaseWithFactory
from lp.testing.layers import LaunchpadZopelessLayer


class TestCanonicalURL(TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def test_build(self):
        self.useFixture(EnvironmentVariable("LP_ROOT_URL", None))
        build = self.factory.makeOCIRecipeBuild(name="r", owner_name="o")
        self.assertEqual(
            f"https://launchpad.test/~o/+oci-recipe/r/+build/{build.id}",
            canonical_url(build),
        )

    def test_root_from_the_environment(self):
        self.useFixture(
            EnvironmentVariable("LP_ROOT_URL", "http://lp.example:8085")
        )
        recipe = self.factory.makeOCIRecipe(name="r", owner_name="o")
        self.assertEqual(
            "http://lp.example:8085/~o/+oci-recipe/r", canonical_url(recipe)
        )

    def test_proxied_file_of_deleted_content_has_no_url(self):
        build = self.factory.makeOCIRecipeBuild()
        lfa = self.factory.makeLibraryFileAlias()
        proxied = ProxiedLibraryFileAlias(lfa, build)
        self.assertTrue(proxied.http_url.endswith("/+files/" + lfa.filename))
        lfa.content = None
        self.assertIsNone(proxied.http_url)
