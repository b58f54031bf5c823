# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for people, distributions, their series and archives."""

__all__ = []

from zope.component import getUtility

from lp.app.errors import NotFoundError
from lp.registry.interfaces.distribution import (
    IDistribution,
    IDistributionSet,
)
from lp.registry.interfaces.distroseries import NoSuchDistroSeries
from lp.registry.interfaces.person import IPerson, IPersonSet
from lp.soyuz.enums import ArchivePurpose
from lp.soyuz.interfaces.archive import IArchiveSet
from lp.testing import TestCaseWithFactory
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)


class TestPerson(TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def test_new(self):
        person = getUtility(IPersonSet).new("alice")
        self.assertTrue(IPerson.providedBy(person))
        self.assertEqual("alice", person.display_name)
        self.assertEqual(person, getUtility(IPersonSet).getByName("alice"))
        self.assertEqual(person, getUtility(IPersonSet).get(person.id))
        self.assertIsNone(getUtility(IPersonSet).getByName("bob"))


class TestPersonSQLite(TestPerson):
    layer = SQLiteLaunchpadZopelessLayer


class TestDistribution(TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def test_new_makes_the_main_archive(self):
        distribution = getUtility(IDistributionSet).new("ubuntu", "Ubuntu")
        self.assertTrue(IDistribution.providedBy(distribution))
        archive = distribution.main_archive
        self.assertEqual(distribution, archive.distribution)
        self.assertEqual(ArchivePurpose.PRIMARY, archive.purpose)
        self.assertTrue(archive.is_main)
        self.assertFalse(archive.private)
        self.assertEqual(archive, getUtility(IArchiveSet).get(archive.id))
        self.assertEqual(
            distribution, getUtility(IDistributionSet).getByName("ubuntu")
        )

    def test_other_archives_are_not_main(self):
        distribution = self.factory.makeDistribution()
        main = distribution.main_archive
        ppa = getUtility(IArchiveSet).new(
            ArchivePurpose.PPA, distribution, private=True
        )
        self.assertFalse(ppa.is_main)
        self.assertEqual(main, distribution.main_archive)

    def test_series_and_architectures(self):
        distribution = self.factory.makeDistribution()
        noble = distribution.newSeries("noble")
        self.assertEqual(noble, distribution.getSeries("noble"))
        self.assertEqual([noble], list(distribution.series))
        self.assertRaises(NoSuchDistroSeries, distribution.getSeries, "x")
        processor = self.factory.makeProcessor("arm64")
        das = noble.newArch("arm64", processor)
        self.assertEqual(das, noble.getDistroArchSeries("arm64"))
        self.assertEqual(das, noble.getDistroArchSeriesByProcessor(processor))
        self.assertEqual([das], list(noble.architectures))
        self.assertRaises(NotFoundError, noble.getDistroArchSeries, "amd64")
        self.assertIsNone(
            noble.getDistroArchSeriesByProcessor(self.factory.makeProcessor())
        )


class TestDistributionSQLite(TestDistribution):
    layer = SQLiteLaunchpadZopelessLayer
