# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interfaces for generic jobs."""

__all__ = [
    "IJob",
    "InvalidTransition",
    "JobStatus",
]

from lazr.enum import DBEnumeratedType, DBItem
from zope.interface import Attribute, Interface
from zope.schema import Choice, Datetime, Int, Text


class InvalidTransition(Exception):
    """A job cannot move from its current status to the one requested."""

    def __init__(self, current_status, requested_status):
        super().__init__(
            f"Transition from {current_status.name} to "
            f"{requested_status.name} is invalid."
        )
        self.current_status = current_status
        self.requested_status = requested_status


class JobStatus(DBEnumeratedType):
    """The status of a job (values as in Launchpad)."""

    WAITING = DBItem(
        0,
        """
        Waiting

        The job is waiting to be run.
        """,
    )

    RUNNING = DBItem(
        1,
        """
        Running

        The job is being run.
        """,
    )

    COMPLETED = DBItem(
        2,
        """
        Completed

        The job ran successfully.
        """,
    )

    FAILED = DBItem(
        3,
        """
        Failed

        The job failed and will not be retried.
        """,
    )

    SUSPENDED = DBItem(
        4,
        """
        Suspended

        The job is on hold and will not run until resumed.
        """,
    )


class IJob(Interface):
    """Generic bookkeeping for a unit of background work."""

    id = Int(title="Identifier", required=True, readonly=True)
    status = Choice(vocabulary=JobStatus, required=True, readonly=True)
    date_created = Datetime(title="Date created", readonly=True)
    date_started = Datetime(title="Date started", required=False)
    date_finished = Datetime(title="Date finished", required=False)
    scheduled_start = Datetime(title="Do not run before", required=False)
    lease_expires = Datetime(title="Lease expiry", required=False)
    attempt_count = Int(title="Attempts so far", required=True)
    max_retries = Int(title="Retries allowed", required=True)
    log = Text(title="Log of the last attempt", required=False)
    is_pending = Attribute("Whether the job has yet to finish.")

    def start():
        """Mark the job as running and count an attempt."""

    def complete():
        """Mark the job as completed."""

    def fail():
        """Mark the job as failed."""

    def queue(scheduled_start=None):
        """Put the job back in the queue to be (re)tried."""

    def suspend():
        """Hold the job."""

    def resume():
        """Release a suspended job."""
