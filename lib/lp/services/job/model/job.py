# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The generic `Job` record shared by every kind of job."""

__all__ = [
    "Job",
]

from datetime import timezone

from storm.locals import DateTime, Int, Unicode
from zope.interface import implementer

from lp.services.database.constants import utc_now
from lp.services.database.enumcol import DBEnum
from lp.services.database.stormbase import StormBase
from lp.services.job.interfaces.job import IJob, InvalidTransition, JobStatus

_VALID_TRANSITIONS = {
    JobStatus.WAITING: {JobStatus.RUNNING, JobStatus.SUSPENDED},
    JobStatus.RUNNING: {
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.SUSPENDED,
        JobStatus.WAITING,
    },
    JobStatus.FAILED: {JobStatus.WAITING},
    JobStatus.COMPLETED: {JobStatus.WAITING},
    JobStatus.SUSPENDED: {JobStatus.WAITING},
}


@implementer(IJob)
class Job(StormBase):
    """See `IJob`."""

    __storm_table__ = "Job"

    id = Int(primary=True)
    status = DBEnum(enum=JobStatus, allow_none=False)
    date_created = DateTime(allow_none=False, tzinfo=timezone.utc)
    date_started = DateTime(tzinfo=timezone.utc)
    date_finished = DateTime(tzinfo=timezone.utc)
    scheduled_start = DateTime(tzinfo=timezone.utc)
    lease_token = Unicode()
    lease_expires = DateTime(tzinfo=timezone.utc)
    attempt_count = Int(allow_none=False)
    max_retries = Int(allow_none=False)
    log = Unicode()

    def __init__(self, max_retries=0, scheduled_start=None):
        super().__init__()
        self.status = JobStatus.WAITING
        self.date_created = utc_now()
        self.attempt_count = 0
        self.max_retries = max_retries
        self.scheduled_start = scheduled_start

    @property
    def is_pending(self):
        """See `IJob`."""
        return self.status in (
            JobStatus.WAITING,
            JobStatus.RUNNING,
            JobStatus.SUSPENDED,
        )

    def _set_status(self, status):
        if status not in _VALID_TRANSITIONS.get(self.status, ()):
            raise InvalidTransition(self.status, status)
        self.status = status

    def start(self):
        """See `IJob`."""
        self._set_status(JobStatus.RUNNING)
        self.date_started = utc_now()
        self.date_finished = None
        self.attempt_count += 1

    def complete(self):
        """See `IJob`."""
        self._set_status(JobStatus.COMPLETED)
        self.date_finished = utc_now()

    def fail(self):
        """See `IJob`."""
        self._set_status(JobStatus.FAILED)
        self.date_finished = utc_now()

    def queue(self, scheduled_start=None):
        """See `IJob`."""
        self._set_status(JobStatus.WAITING)
        self.date_finished = utc_now() if self.date_started else None
        self.scheduled_start = scheduled_start
        self.lease_token = None
        self.lease_expires = None

    def suspend(self):
        """See `IJob`."""
        self._set_status(JobStatus.SUSPENDED)

    def resume(self):
        """See `IJob`."""
        if self.status != JobStatus.SUSPENDED:
            raise InvalidTransition(self.status, JobStatus.WAITING)
        self._set_status(JobStatus.WAITING)
