# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Processors."""

__all__ = [
    "Processor",
    "ProcessorSet",
]

from storm.locals import Int, Unicode
from zope.interface import implementer

from lp.buildmaster.interfaces.processor import (
    IProcessor,
    IProcessorSet,
    ProcessorNotFound,
)
from lp.services.database.interfaces import IPrimaryStore, IStore
from lp.services.database.stormbase import StormBase


@implementer(IProcessor)
class Processor(StormBase):
    """See `IProcessor`."""

    __storm_table__ = "Processor"

    id = Int(primary=True)
    name = Unicode(name="name", allow_none=False)
    title = Unicode(name="title", allow_none=False)

    def __init__(self, name, title):
        super().__init__()
        self.name = name
        self.title = title

    def __repr__(self):
        return f"<Processor {self.name!r}>"


@implementer(IProcessorSet)
class ProcessorSet:
    """See `IProcessorSet`."""

    def getByName(self, name):
        """See `IProcessorSet`."""
        processor = IStore(Processor).find(Processor, name=name).one()
        if processor is None:
            raise ProcessorNotFound(name)
        return processor

    def getAll(self):
        """See `IProcessorSet`."""
        return IStore(Processor).find(Processor).order_by(Processor.name)

    def new(self, name, title):
        """See `IProcessorSet`."""
        processor = Processor(name, title)
        IPrimaryStore(Processor).add(processor)
        return processor
