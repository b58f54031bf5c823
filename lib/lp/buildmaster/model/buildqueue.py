# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The build queue: jobs waiting for a builder, or running on one."""

__all__ = [
    "BuildQueue",
    "BuildQueueSet",
    "specific_build_farm_job_sources",
]

from datetime import timedelta, timezone

from storm.locals import Bool, DateTime, Int, Reference, TimeDelta, Unicode
from storm.store import Store
from zope.component import getSiteManager
from zope.interface import implementer

from lp.app.errors import NotFoundError
from lp.buildmaster.enums import (
    BuildFarmJobType,
    BuildQueueStatus,
    BuildStatus,
)
from lp.buildmaster.interfaces.buildfarmjob import ISpecificBuildFarmJobSource
from lp.buildmaster.interfaces.buildqueue import IBuildQueue, IBuildQueueSet
from lp.services.database.constants import utc_now
from lp.services.database.enumcol import DBEnum
from lp.services.database.interfaces import IStore
from lp.services.database.stormbase import StormBase


def specific_build_farm_job_sources():
    """The `ISpecificBuildFarmJobSource`s, by `BuildFarmJobType`."""
    return {
        getattr(BuildFarmJobType, name): source
        for name, source in getSiteManager().getUtilitiesFor(
            ISpecificBuildFarmJobSource
        )
        if name
    }


@implementer(IBuildQueue)
class BuildQueue(StormBase):
    """See `IBuildQueue`."""

    __storm_table__ = "BuildQueue"

    id = Int(primary=True)
    _build_farm_job_id = Int(name="build_farm_job", allow_none=False)
    _build_farm_job = Reference(_build_farm_job_id, "BuildFarmJob.id")
    status = DBEnum(name="status", enum=BuildQueueStatus, allow_none=False)
    date_started = DateTime(name="date_started", tzinfo=timezone.utc)
    builder_id = Int(name="builder")
    builder = Reference(builder_id, "Builder.id")
    logtail = Unicode(name="logtail")
    lastscore = Int(name="lastscore")
    manual = Bool(name="manual", allow_none=False)
    estimated_duration = TimeDelta(name="estimated_duration", allow_none=False)
    processor_id = Int(name="processor")
    processor = Reference(processor_id, "Processor.id")
    virtualized = Bool(name="virtualized")

    def __init__(
        self,
        build_farm_job,
        estimated_duration=timedelta(0),
        virtualized=None,
        processor=None,
        lastscore=None,
    ):
        super().__init__()
        self._build_farm_job = build_farm_job
        self.estimated_duration = estimated_duration
        self.virtualized = virtualized
        self.processor = processor
        self.lastscore = lastscore
        self.manual = False
        self.status = BuildQueueStatus.WAITING

    def __repr__(self):
        return f"<BuildQueue {self.id} for {self._build_farm_job_id}>"

    @property
    def specific_source(self):
        """The `ISpecificBuildFarmJobSource` of the queued job."""
        return specific_build_farm_job_sources()[self._build_farm_job.job_type]

    @property
    def specific_build(self):
        """See `IBuildQueue`."""
        return self.specific_source.getByBuildFarmJob(self._build_farm_job)

    @property
    def build_cookie(self):
        """See `IBuildQueue`."""
        return self.specific_build.build_cookie

    def markAsBuilding(self, builder):
        """See `IBuildQueue`."""
        self.builder = builder
        self.status = BuildQueueStatus.RUNNING
        self.date_started = utc_now()
        self.specific_build.updateStatus(BuildStatus.BUILDING, builder=builder)

    def reset(self):
        """See `IBuildQueue`."""
        build = self.specific_build
        self.builder = None
        self.status = BuildQueueStatus.WAITING
        self.date_started = None
        self.logtail = None
        build.clearBuilder()
        build.updateStatus(BuildStatus.NEEDSBUILD)

    def destroySelf(self):
        """See `IBuildQueue`."""
        store = Store.of(self)
        store.remove(self)
        store.flush()


@implementer(IBuildQueueSet)
class BuildQueueSet:
    """See `IBuildQueueSet`."""

    def get(self, buildqueue_id):
        """See `IBuildQueueSet`."""
        bq = IStore(BuildQueue).get(BuildQueue, buildqueue_id)
        if bq is None:
            raise NotFoundError(buildqueue_id)
        return bq

    def getByBuilder(self, builder):
        """See `IBuildQueueSet`."""
        return (
            IStore(BuildQueue)
            .find(BuildQueue, BuildQueue.builder == builder)
            .one()
        )
