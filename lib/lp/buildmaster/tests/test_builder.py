# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for builders and processors, on every backend."""

__all__ = []

from storm.exceptions import IntegrityError
from testtools.matchers import MatchesStructure
from zope.component import getUtility

from lp.app.errors import NotFoundError
from lp.buildmaster.interfaces.builder import IBuilder, IBuilderSet
from lp.buildmaster.interfaces.processor import (
    IProcessor,
    IProcessorSet,
    ProcessorNotFound,
)
from lp.services.database.interfaces import IStore
from lp.testing import TestCaseWithFactory
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)


class TestProcessor(TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def test_new_and_getByName(self):
        processor = getUtility(IProcessorSet).new("riscv64", "RISC-V 64")
        self.assertTrue(IProcessor.providedBy(processor))
        self.assertEqual(
            processor, getUtility(IProcessorSet).getByName("riscv64")
        )
        self.assertIn(processor, list(getUtility(IProcessorSet).getAll()))
        self.assertRaises(
            ProcessorNotFound, getUtility(IProcessorSet).getByName, "vax"
        )

    def test_names_are_unique(self):
        processor = getUtility(IProcessorSet).new("amd64", "AMD 64")
        getUtility(IProcessorSet).new("amd64", "again")
        self.assertRaises(IntegrityError, IStore(processor).flush)


class TestProcessorSQLite(TestProcessor):
    layer = SQLiteLaunchpadZopelessLayer


class TestBuilder(TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def test_new(self):
        processor = self.factory.makeProcessor()
        builder = getUtility(IBuilderSet).new(
            processor, "http://bob.example:8221/", "bob", vm_host="host"
        )
        self.assertTrue(IBuilder.providedBy(builder))
        self.assertThat(
            builder,
            MatchesStructure.byEquality(
                name="bob",
                url="http://bob.example:8221/",
                processor=processor,
                processors=[processor],
                virtualized=True,
                vm_host="host",
                builderok=True,
                failnotes=None,
                failure_count=0,
                currentjob=None,
            ),
        )
        builders = getUtility(IBuilderSet)
        self.assertEqual(builder, builders.getByName("bob"))
        self.assertEqual(builder, builders["bob"])
        self.assertEqual(builder, builders.get(builder.id))
        self.assertEqual([builder], list(builders.getBuilders()))
        self.assertIsNone(builders.getByName("alice"))
        self.assertRaises(NotFoundError, builders.__getitem__, "alice")

    def test_failures(self):
        builder = self.factory.makeBuilder()
        builder.gotFailure()
        builder.gotFailure()
        self.assertEqual(2, builder.failure_count)
        builder.resetFailureCount()
        self.assertEqual(0, builder.failure_count)
        builder.failBuilder("Cannot reach the builder")
        self.assertFalse(builder.builderok)
        self.assertEqual("Cannot reach the builder", builder.failnotes)


class TestBuilderSQLite(TestBuilder):
    layer = SQLiteLaunchpadZopelessLayer
