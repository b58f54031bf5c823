# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interfaces for build farm jobs."""

__all__ = [
    "CannotBeRetried",
    "IBuildFarmJob",
    "IBuildFarmJobDB",
    "IBuildFarmJobSource",
    "ISpecificBuildFarmJobSource",
    "InvalidBuildStatusTransition",
]

import http.client

from lazr.restful.declarations import error_status
from zope.interface import Attribute, Interface
from zope.schema import Bool, Choice, Datetime, Int, TextLine

from lp.buildmaster.enums import BuildFarmJobType, BuildStatus


@error_status(http.client.BAD_REQUEST)
class CannotBeRetried(Exception):
    """Attempt to retry a build that cannot be retried (as Launchpad's)."""

    def __init__(self, build_id):
        super().__init__(f"Build {build_id} cannot be retried")


class InvalidBuildStatusTransition(Exception):
    """A build cannot move from its status to the one requested.

    Launchpad raises a bare `AssertionError` here.
    """

    def __init__(self, current_status, requested_status):
        super().__init__(
            f"Can't change build status from {current_status.name} to "
            f"{requested_status.name}."
        )
        self.current_status = current_status
        self.requested_status = requested_status


class IBuildFarmJobDB(Interface):
    """The generic record behind every build farm job (`BuildFarmJob`)."""

    id = Int(title="ID", required=True, readonly=True)
    job_type = Choice(
        title="Job type", vocabulary=BuildFarmJobType, required=True
    )
    status = Choice(title="Status", vocabulary=BuildStatus, required=True)
    date_created = Datetime(title="Date created", required=True)
    date_finished = Datetime(title="Date finished", required=False)
    builder = Attribute("The `IBuilder` the job ran on, or None.")
    failure_count = Int(title="Failures on builders", required=True)
    archive = Attribute("The `IArchive` the job builds for, or None.")


class IBuildFarmJob(Interface):
    """A specific kind of build farm job (e.g. an `IOCIRecipeBuild`)."""

    id = Int(title="ID", required=True, readonly=True)
    build_farm_job = Attribute("The `IBuildFarmJobDB` of this job.")
    job_type = Choice(
        title="Job type", vocabulary=BuildFarmJobType, readonly=True
    )
    processor = Attribute("The `IProcessor` the job runs on.")
    virtualized = Bool(title="Runs on a virtual builder", readonly=True)
    status = Choice(title="Status", vocabulary=BuildStatus, readonly=True)
    date_created = Datetime(title="Date created", readonly=True)
    date_started = Datetime(title="Date started", required=False)
    date_finished = Datetime(title="Date finished", required=False)
    date_first_dispatched = Datetime(
        title="Date first dispatched", required=False
    )
    builder = Attribute("The `IBuilder` the job ran on, or None.")
    log = Attribute("The build log `ILibraryFileAlias`, or None.")
    failure_count = Int(title="Failures on builders", readonly=True)
    dependencies = TextLine(
        title="Unsatisfied dependencies reported by the builder",
        required=False,
    )
    title = TextLine(title="Title", readonly=True)
    build_cookie = TextLine(
        title="The build id given to builders", readonly=True
    )
    buildqueue_record = Attribute(
        "The `IBuildQueue` entry of this job, or None."
    )
    is_private = Bool(title="Whether the job is private", readonly=True)
    was_built = Bool(title="Whether the build ran to an end", readonly=True)

    def setLog(log):
        """Set the build log to ``log`` (an `ILibraryFileAlias`)."""

    def updateStatus(
        status,
        builder=None,
        worker_status=None,
        date_started=None,
        date_finished=None,
        force_invalid_transition=False,
    ):
        """Move the job to ``status``, keeping its dates consistent.

        Mirrors the status, builder and finish date on `build_farm_job`.

        :param builder: The `IBuilder` the job runs on, if known.
        :param worker_status: The builder's status dict, if any (its
            ``dependencies`` are kept for MANUALDEPWAIT).
        :raises InvalidBuildStatusTransition: if the job may not move
            from its current status to ``status`` and
            ``force_invalid_transition`` is False.
        """

    def gotFailure():
        """Count a failure of this job on a builder."""

    def queueBuild(suspended=False):
        """Create and return the `IBuildQueue` entry of this job."""

    def clearBuilder():
        """Forget the builder this job ran on."""


class IBuildFarmJobSource(Interface):
    """Creating `IBuildFarmJobDB` records."""

    def new(
        job_type,
        status=BuildStatus.NEEDSBUILD,
        date_created=None,
        builder=None,
        archive=None,
    ):
        """Create an `IBuildFarmJobDB`."""


class ISpecificBuildFarmJobSource(Interface):
    """Finding the specific job of a build farm job.

    Registered as a utility named after the job's `BuildFarmJobType`.
    """

    def getByID(id):
        """The specific job with this id, or None."""

    def getByBuildFarmJob(build_farm_job):
        """The specific job of this `IBuildFarmJobDB`, or None."""
