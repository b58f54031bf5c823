# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Status strings as builders report them over XML-RPC.

Builders report their state as plain strings ("BuilderStatus.WAITING",
"BuildStatus.OK").  Launchpad's own `lp.buildmaster.enums.BuildStatus`
is the database enumeration of build records (NEEDSBUILD, FULLYBUILT,
...), a different thing, so the wire values are named
`WorkerBuilderStatus` and `WorkerBuildStatus` here to keep the two
apart when this module is merged.
"""

__all__ = [
    "BuildFarmJobType",
    "BuildQueueStatus",
    "BuildStatus",
    "WorkerBuildStatus",
    "WorkerBuilderStatus",
]

from lazr.enum import DBEnumeratedType, DBItem


class WorkerBuilderStatus:
    """The ``builder_status`` values of a builder's status()."""

    IDLE = "BuilderStatus.IDLE"
    BUILDING = "BuilderStatus.BUILDING"
    WAITING = "BuilderStatus.WAITING"
    ABORTING = "BuilderStatus.ABORTING"


class WorkerBuildStatus:
    """The ``build_status`` values of a WAITING builder's status()."""

    OK = "BuildStatus.OK"
    DEPFAIL = "BuildStatus.DEPFAIL"
    GIVENBACK = "BuildStatus.GIVENBACK"
    PACKAGEFAIL = "BuildStatus.PACKAGEFAIL"
    CHROOTFAIL = "BuildStatus.CHROOTFAIL"
    BUILDERFAIL = "BuildStatus.BUILDERFAIL"
    ABORTED = "BuildStatus.ABORTED"


class BuildStatus(DBEnumeratedType):
    """Build status type

    The states a build record passes through, from creation to a final
    verdict.  The values are stored in the database and match Launchpad's.
    """

    NEEDSBUILD = DBItem(
        0,
        """
        Needs building

        The build record is new and is waiting for a builder.
        """,
    )

    FULLYBUILT = DBItem(
        1,
        """
        Successfully built

        The build completed and its files were uploaded.
        """,
    )

    FAILEDTOBUILD = DBItem(
        2,
        """
        Failed to build

        The build failed on the builder.
        """,
    )

    MANUALDEPWAIT = DBItem(
        3,
        """
        Dependency wait

        The build is waiting for dependencies that cannot be satisfied.
        """,
    )

    CHROOTWAIT = DBItem(
        4,
        """
        Chroot problem

        The build needs a build environment that is missing or broken.
        """,
    )

    SUPERSEDED = DBItem(
        5,
        """
        Build for superseded source

        A newer build made this one unnecessary.
        """,
    )

    BUILDING = DBItem(
        6,
        """
        Currently building

        A builder is working on this build.
        """,
    )

    FAILEDTOUPLOAD = DBItem(
        7,
        """
        Failed to upload

        The build finished but its results could not be processed.
        """,
    )

    UPLOADING = DBItem(
        8,
        """
        Uploading build

        The build finished and its results are being processed.
        """,
    )

    CANCELLING = DBItem(
        9,
        """
        Cancelling build

        Cancellation was requested and is waiting for the builder.
        """,
    )

    CANCELLED = DBItem(
        10,
        """
        Cancelled build

        The build was cancelled.  This is a terminal state.
        """,
    )

    GATHERING = DBItem(
        11,
        """
        Gathering build output

        The builder finished and its files are being collected.
        """,
    )


class BuildFarmJobType(DBEnumeratedType):
    """Build farm job type

    The kinds of job the build farm runs.  Only the OCI recipe build is
    implemented here; the value is Launchpad's.
    """

    OCIRECIPEBUILD = DBItem(
        7,
        """
        Build OCI image

        Build an OCI image from a recipe.
        """,
    )


class BuildQueueStatus(DBEnumeratedType):
    """Build queue status

    The state of a `BuildQueue` entry (values as in Launchpad).
    """

    WAITING = DBItem(
        0,
        """
        Waiting

        The job is waiting to be dispatched to a builder.
        """,
    )

    RUNNING = DBItem(
        1,
        """
        Running

        The job is running on a builder.
        """,
    )

    SUSPENDED = DBItem(
        2,
        """
        Suspended

        The job is waiting and will not be dispatched.
        """,
    )

    CANCELLING = DBItem(
        3,
        """
        Cancelling

        The job is being cancelled on its builder.
        """,
    )
