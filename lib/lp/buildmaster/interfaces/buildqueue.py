# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Build queue interfaces."""

__all__ = [
    "IBuildQueue",
    "IBuildQueueSet",
]

from zope.interface import Attribute, Interface
from zope.schema import Bool, Choice, Datetime, Int, Text, Timedelta

from lp.buildmaster.enums import BuildQueueStatus


class IBuildQueue(Interface):
    """A job waiting for a builder, or running on one."""

    id = Int(title="ID", required=True, readonly=True)
    builder = Attribute("The `IBuilder` running the job, or None.")
    logtail = Text(title="The tail of the builder's log", required=False)
    lastscore = Int(title="Last score", required=False)
    manual = Bool(title="Whether the score was set by hand")
    estimated_duration = Timedelta(title="Estimated duration")
    processor = Attribute("The `IProcessor` the job needs.")
    virtualized = Bool(title="Whether the job needs a virtual builder")
    status = Choice(title="Status", vocabulary=BuildQueueStatus)
    date_started = Datetime(title="Date started", required=False)
    specific_build = Attribute(
        "The specific job (e.g. an `IOCIRecipeBuild`) queued here."
    )
    build_cookie = Attribute("The build id given to the builder.")

    def markAsBuilding(builder):
        """The job is dispatched to ``builder``; it is BUILDING."""

    def reset():
        """The job goes back to the queue; its build NEEDSBUILD."""

    def destroySelf():
        """Remove this entry from the queue."""


class IBuildQueueSet(Interface):
    """Finding `IBuildQueue` entries."""

    def get(buildqueue_id):
        """The `IBuildQueue` with this id; `NotFoundError` if none."""

    def getByBuilder(builder):
        """The `IBuildQueue` running on ``builder``, or None."""
