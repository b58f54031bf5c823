# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Base classes for Launchpad tests."""

__all__ = [
    "TestCase",
    "TestCaseWithFactory",
]

import testtools


class TestCase(testtools.TestCase):
    """A testtools test case; set ``layer`` to the narrowest that works."""


class TestCaseWithFactory(TestCase):
    """A test case with ``self.factory``, a `LaunchpadObjectFactory`."""

    def setUp(self):
        super().setUp()
        # Imported here so that lp.testing stays importable without the
        # models (e.g. by builder-side tests).
        from lp.testing.factory import LaunchpadObjectFactory

        self.factory = LaunchpadObjectFactory()
