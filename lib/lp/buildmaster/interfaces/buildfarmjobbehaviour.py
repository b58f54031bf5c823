# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interface for build farm job behaviours."""

__all__ = [
    "IBuildFarmJobBehaviour",
]

from zope.interface import Attribute, Interface


class IBuildFarmJobBehaviour(Interface):
    """What the build farm master does with one kind of build.

    Deviation from Launchpad: the master here is synchronous, so no
    method returns a Deferred, and `handleStatus` takes no `BuildQueue`.
    """

    build = Attribute("The build this behaviour handles.")
    build_cookie = Attribute("The build id the builder reports.")

    def setBuilder(builder, worker):
        """Use ``worker`` (a `BuilderWorker`) to talk to the builder."""

    def extraBuildArgs(logger=None):
        """The extra arguments the builder's build manager needs."""

    def verifySuccessfulBuild():
        """Check that a successful build may be collected.

        :raises AssertionError: if not.
        """

    def handleStatus(worker_status, logger=None):
        """Act on a builder's status() for this build.

        :return: The upload directory when the build's files were
            collected, otherwise None.
        """

    def handleSuccess(worker_status, logger=None):
        """Collect the files of a build the builder reports as OK.

        :return: The upload directory, or None if the build failed.
        """
