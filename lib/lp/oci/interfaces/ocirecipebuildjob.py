# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interfaces for jobs that act on OCI recipe builds."""

__all__ = [
    "IOCIRecipeBuildJob",
    "IOCIRegistryUploadJob",
    "IOCIRegistryUploadJobSource",
    "OCIRecipeBuildJobType",
]

from lazr.enum import DBEnumeratedType, DBItem
from zope.interface import Attribute, Interface
from zope.schema import Bool, Choice, Dict, List, TextLine


class OCIRecipeBuildJobType(DBEnumeratedType):
    """Values that `IOCIRecipeBuildJob.job_type` can take."""

    REGISTRY_UPLOAD = DBItem(
        0,
        """
        Registry upload

        Push an OCI build to the recipe's registry.
        """,
    )


class IOCIRecipeBuildJob(Interface):
    """A job acting on an OCI recipe build."""

    job = Attribute("The generic `IJob` record.")
    build = Attribute("The `IOCIRecipeBuild` acted on.")
    job_type = Choice(vocabulary=OCIRecipeBuildJobType, readonly=True)
    json_data = Attribute("Job-type specific data, as a JSON object.")

    def makeDerived():
        """The job-type specific wrapper of this job."""


class IOCIRegistryUploadJob(Interface):
    """A job pushing a build to a registry.

    Running it belongs to the registry client; this records its state.
    """

    context = Attribute("The `IOCIRecipeBuildJob`.")
    job = Attribute("The generic `IJob` record.")
    build = Attribute("The `IOCIRecipeBuild` to push.")
    error_summary = TextLine(title="Summary of the last error", required=False)
    errors = List(
        title="The registry's errors from the last attempt",
        value_type=Dict(key_type=TextLine()),
        required=False,
    )
    build_uploaded = Bool(
        title="Whether this build has been pushed", required=True
    )
    tags = List(
        title="The tags to update (None: the client's default)",
        value_type=TextLine(),
        required=False,
    )
    uploaded_manifests = Dict(
        title="The manifests pushed, by push rule id",
        description=(
            "Each a list of descriptors (mediaType, digest, size, "
            "platform) for the manifest list."
        ),
        readonly=True,
    )
    registry_results = Dict(
        title="What each push rule's push did, by push rule id",
        readonly=True,
    )
    manifest_list_digests = Dict(
        title="The manifest list digest of each tag, by push rule id",
        readonly=True,
    )

    def run(client=None):
        """Push the build, then update the manifest lists.

        :raises OCIRegistryError: if a registry refused or failed.
        """

    def runAndRecord(client=None):
        """Run, recording the outcome and errors on the job; commits."""


class IOCIRegistryUploadJobSource(Interface):
    """Creating registry upload jobs."""

    def create(build, tags=None):
        """Queue a registry upload of ``build``; return the new job."""

    def iterReady():
        """The registry upload jobs ready to run, oldest first."""
