# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The generic build farm job record and what specific jobs share."""

__all__ = [
    "BuildFarmJob",
    "BuildFarmJobMixin",
    "VALID_STATUS_TRANSITIONS",
]

from datetime import timedelta, timezone

from storm.locals import DateTime, Int, Reference
from storm.store import Store
from zope.interface import implementer, provider

from lp.buildmaster.enums import BuildFarmJobType, BuildStatus
from lp.buildmaster.interfaces.builder import BuildDaemonError
from lp.buildmaster.interfaces.buildfarmjob import (
    IBuildFarmJobDB,
    IBuildFarmJobSource,
    InvalidBuildStatusTransition,
)
from lp.buildmaster.model.buildqueue import BuildQueue
from lp.services.database.constants import utc_now
from lp.services.database.enumcol import DBEnum
from lp.services.database.interfaces import IPrimaryStore
from lp.services.database.stormbase import StormBase

# Launchpad's transitions, plus GATHERING (files being collected from
# the builder), which only leads on to processing or failure.
VALID_STATUS_TRANSITIONS = {
    BuildStatus.NEEDSBUILD: tuple(BuildStatus.items),
    BuildStatus.FULLYBUILT: (),
    BuildStatus.FAILEDTOBUILD: (BuildStatus.NEEDSBUILD,),
    BuildStatus.MANUALDEPWAIT: (BuildStatus.NEEDSBUILD,),
    BuildStatus.CHROOTWAIT: (BuildStatus.NEEDSBUILD,),
    BuildStatus.SUPERSEDED: (),
    BuildStatus.BUILDING: tuple(BuildStatus.items),
    BuildStatus.GATHERING: (
        BuildStatus.UPLOADING,
        BuildStatus.FAILEDTOUPLOAD,
        BuildStatus.FAILEDTOBUILD,
        BuildStatus.NEEDSBUILD,
        BuildStatus.CANCELLED,
    ),
    BuildStatus.FAILEDTOUPLOAD: (BuildStatus.NEEDSBUILD,),
    BuildStatus.UPLOADING: (
        BuildStatus.FULLYBUILT,
        BuildStatus.FAILEDTOUPLOAD,
        BuildStatus.SUPERSEDED,
    ),
    BuildStatus.CANCELLING: (BuildStatus.CANCELLED,),
    BuildStatus.CANCELLED: (BuildStatus.NEEDSBUILD,),
}

# Statuses in which a started build has not finished.
_UNFINISHED_STATUSES = (
    BuildStatus.NEEDSBUILD,
    BuildStatus.BUILDING,
    BuildStatus.CANCELLING,
)


@implementer(IBuildFarmJobDB)
@provider(IBuildFarmJobSource)
class BuildFarmJob(StormBase):
    """See `IBuildFarmJobDB`."""

    __storm_table__ = "BuildFarmJob"

    id = Int(primary=True)
    job_type = DBEnum(name="job_type", enum=BuildFarmJobType, allow_none=False)
    status = DBEnum(name="status", enum=BuildStatus, allow_none=False)
    date_created = DateTime(
        name="date_created", tzinfo=timezone.utc, allow_none=False
    )
    date_finished = DateTime(name="date_finished", tzinfo=timezone.utc)
    builder_id = Int(name="builder")
    builder = Reference(builder_id, "Builder.id")
    failure_count = Int(name="failure_count", allow_none=False)
    archive_id = Int(name="archive")
    archive = Reference(archive_id, "Archive.id")

    def __init__(
        self,
        job_type,
        status=BuildStatus.NEEDSBUILD,
        date_created=None,
        builder=None,
        archive=None,
    ):
        super().__init__()
        self.job_type = job_type
        self.status = status
        self.date_created = date_created or utc_now()
        self.builder = builder
        self.archive = archive
        self.failure_count = 0

    @classmethod
    def new(
        cls,
        job_type,
        status=BuildStatus.NEEDSBUILD,
        date_created=None,
        builder=None,
        archive=None,
    ):
        """See `IBuildFarmJobSource`."""
        build_farm_job = cls(job_type, status, date_created, builder, archive)
        IPrimaryStore(BuildFarmJob).add(build_farm_job)
        return build_farm_job


class BuildFarmJobMixin:
    """What specific build farm jobs share (see `IBuildFarmJob`).

    A subclass has Launchpad's build columns (`build_farm_job`, `status`,
    `builder`, the dates, `log`, `failure_count`, `processor`,
    `virtualized`) and a `job_type`.
    """

    @property
    def title(self):
        """See `IBuildFarmJob`."""
        return self.job_type.title

    @property
    def build_cookie(self):
        """See `IBuildFarmJob`."""
        return "%s-%s" % (self.job_type.name, self.id)

    @property
    def is_private(self):
        """See `IBuildFarmJob`."""
        return False

    @property
    def was_built(self):
        """See `IBuildFarmJob`."""
        return self.status not in (
            BuildStatus.NEEDSBUILD,
            BuildStatus.BUILDING,
            BuildStatus.GATHERING,
            BuildStatus.CANCELLED,
            BuildStatus.CANCELLING,
            BuildStatus.UPLOADING,
            BuildStatus.SUPERSEDED,
        )

    @property
    def buildqueue_record(self):
        """See `IBuildFarmJob`."""
        return (
            Store.of(self)
            .find(
                BuildQueue, BuildQueue._build_farm_job == self.build_farm_job
            )
            .one()
        )

    def setLog(self, log):
        """See `IBuildFarmJob`."""
        self.log = log

    def estimateDuration(self):
        """How long the job is expected to take on a builder."""
        return timedelta(minutes=30)

    def calculateScore(self):
        """The job's score in the queue."""
        return 0

    def updateStatus(
        self,
        status,
        builder=None,
        worker_status=None,
        date_started=None,
        date_finished=None,
        force_invalid_transition=False,
    ):
        """See `IBuildFarmJob`."""
        current = self.build_farm_job.status
        if (
            not force_invalid_transition
            and status != current
            and status not in VALID_STATUS_TRANSITIONS[current]
        ):
            raise InvalidBuildStatusTransition(current, status)
        self.build_farm_job.status = self.status = status
        if builder is not None:
            if self.builder is None:
                self.build_farm_job.builder = self.builder = builder
            elif self.builder != builder:
                raise BuildDaemonError(
                    f"{self.build_cookie} is on {self.builder.name}, "
                    f"not {builder.name}"
                )
        if self.date_started is None and status == BuildStatus.BUILDING:
            self.date_started = date_started or utc_now()
            if self.date_first_dispatched is None:
                self.date_first_dispatched = self.date_started
        # Final states (and UPLOADING and GATHERING, which nearly are)
        # finish a build that started.
        if (
            self.date_started is not None
            and self.date_finished is None
            and status not in _UNFINISHED_STATUSES
        ):
            self.build_farm_job.date_finished = self.date_finished = (
                date_finished or utc_now()
            )

    def gotFailure(self):
        """See `IBuildFarmJob`."""
        self.failure_count += 1
        self.build_farm_job.failure_count = self.failure_count

    def clearBuilder(self):
        """See `IBuildFarmJob`."""
        self.build_farm_job.builder = self.builder = None

    def queueBuild(self, suspended=False):
        """See `IBuildFarmJob`."""
        queue_entry = BuildQueue(
            build_farm_job=self.build_farm_job,
            estimated_duration=self.estimateDuration(),
            processor=self.processor,
            virtualized=self.virtualized,
            lastscore=self.calculateScore(),
        )
        store = Store.of(self)
        store.add(queue_entry)
        store.flush()
        return queue_entry
