# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interface for build farm job behaviours."""

__all__ = [
    "IBuildFarmJobBehaviour",
]

from zope.interface import Attribute, Interface


class IBuildFarmJobBehaviour(Interface):
    """What the build farm manager does with one kind of build.

    As in Launchpad, `handleStatus` and `handleSuccess` return Deferreds.
    """

    build = Attribute("The build this behaviour handles.")

    def setBuilder(builder, worker):
        """Use ``worker`` (a `BuilderWorker`) to talk to ``builder``."""

    def extraBuildArgs(logger=None):
        """The extra arguments the builder's build manager needs."""

    def verifySuccessfulBuild():
        """Check that a successful build may be collected.

        :raises AssertionError: if not.
        """

    def handleStatus(bq, worker_status):
        """Update the build from a WAITING or BUILDING status.

        :param bq: The `BuildQueue` currently handling this build.
        :param worker_status: A dict as returned by `BuilderWorker.status`.
        :return: A Deferred that fires once the build's status is
            committed (and, if it finished, its queue entry destroyed).
        """

    def handleSuccess(worker_status, logger):
        """Collect the files of a build the builder reports as OK.

        :return: A Deferred firing with the build's new `BuildStatus`.
        """
