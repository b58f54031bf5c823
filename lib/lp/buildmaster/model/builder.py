# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Builders."""

__all__ = [
    "Builder",
    "BuilderSet",
]

from storm.locals import Bool, Int, Reference, Unicode
from zope.component import getUtility
from zope.interface import implementer

from lp.app.errors import NotFoundError
from lp.buildmaster.interfaces.builder import IBuilder, IBuilderSet
from lp.buildmaster.interfaces.buildqueue import IBuildQueueSet
from lp.services.database.interfaces import IPrimaryStore, IStore
from lp.services.database.stormbase import StormBase


@implementer(IBuilder)
class Builder(StormBase):
    """See `IBuilder`."""

    __storm_table__ = "Builder"

    id = Int(primary=True)
    name = Unicode(name="name", allow_none=False)
    url = Unicode(name="url", allow_none=False)
    processor_id = Int(name="processor", allow_none=False)
    processor = Reference(processor_id, "Processor.id")
    virtualized = Bool(name="virtualized", allow_none=False)
    vm_host = Unicode(name="vm_host")
    builderok = Bool(name="builderok", allow_none=False)
    failnotes = Unicode(name="failnotes")
    failure_count = Int(name="failure_count", allow_none=False)

    @property
    def title(self):
        """See `IBuilder`."""
        return self.name

    def __init__(self, processor, url, name, virtualized=True, vm_host=None):
        super().__init__()
        self.processor = processor
        self.url = url
        self.name = name
        self.virtualized = virtualized
        self.vm_host = vm_host
        self.builderok = True
        self.failure_count = 0

    def __repr__(self):
        return f"<Builder {self.name!r}>"

    @property
    def processors(self):
        """See `IBuilder`."""
        return [self.processor]

    @property
    def currentjob(self):
        """See `IBuilder`."""
        return getUtility(IBuildQueueSet).getByBuilder(self)

    def gotFailure(self):
        """See `IBuilder`."""
        self.failure_count += 1

    def resetFailureCount(self):
        """See `IBuilder`."""
        self.failure_count = 0

    def failBuilder(self, reason):
        """See `IBuilder`."""
        self.builderok = False
        self.failnotes = reason


@implementer(IBuilderSet)
class BuilderSet:
    """See `IBuilderSet`."""

    def get(self, builder_id):
        """See `IBuilderSet`."""
        return IStore(Builder).get(Builder, builder_id)

    def getByName(self, name):
        """See `IBuilderSet`."""
        return IStore(Builder).find(Builder, name=name).one()

    def __getitem__(self, name):
        """See `IBuilderSet`."""
        builder = self.getByName(name)
        if builder is None:
            raise NotFoundError(name)
        return builder

    def getBuilders(self):
        """See `IBuilderSet`."""
        return IStore(Builder).find(Builder).order_by(Builder.name)

    def new(self, processor, url, name, virtualized=True, vm_host=None):
        """See `IBuilderSet`."""
        builder = Builder(
            processor, url, name, virtualized=virtualized, vm_host=vm_host
        )
        IPrimaryStore(Builder).add(builder)
        return builder
