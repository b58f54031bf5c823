# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interfaces for OCI recipe builds and the files they produce."""

__all__ = [
    "CannotScheduleRegistryUpload",
    "IOCIFile",
    "IOCIFileSet",
    "IOCIRecipeBuild",
    "IOCIRecipeBuildSet",
    "OCIRecipeBuildRegistryUploadStatus",
]

import http.client

from lazr.enum import EnumeratedType, Item
from lazr.restful.declarations import (
    REQUEST_USER,
    collection_default_content,
    error_status,
    export_read_operation,
    export_write_operation,
    exported,
    exported_as_webservice_collection,
    exported_as_webservice_entry,
    operation_for_version,
)
from lazr.restful.fields import Reference
from zope.interface import Attribute, Interface
from zope.schema import (
    Bool,
    Choice,
    Datetime,
    Dict,
    Int,
    List,
    TextLine,
    Timedelta,
)

from lp.buildmaster.enums import BuildStatus
from lp.buildmaster.interfaces.builder import IBuilder
from lp.buildmaster.interfaces.buildfarmjob import IBuildFarmJob
from lp.oci.enums import OCIFileKind
from lp.registry.interfaces.person import IPerson
from lp.soyuz.interfaces.distroarchseries import IDistroArchSeries


@error_status(http.client.BAD_REQUEST)
class CannotScheduleRegistryUpload(Exception):
    """This build cannot be uploaded to registries."""


class OCIRecipeBuildRegistryUploadStatus(EnumeratedType):
    """OCI build registry upload status type

    Where an OCI build is in being pushed to a registry.
    """

    UNSCHEDULED = Item("""
        Unscheduled

        No upload of this OCI build to a registry is scheduled.
        """)

    PENDING = Item("""
        Pending

        This OCI build is queued for upload to a registry.
        """)

    FAILEDTOUPLOAD = Item("""
        Failed to upload

        The last attempt to upload this OCI build to a registry failed.
        """)

    UPLOADED = Item("""
        Uploaded

        This OCI build was successfully uploaded to a registry.
        """)

    SUPERSEDED = Item("""
        Superseded

        A more recent build will be uploaded instead.
        """)


class IOCIRecipeBuildView(IBuildFarmJob):
    """`IOCIRecipeBuild` attributes that need launchpad.View."""

    requester = exported(
        Reference(
            IPerson,
            title="Requester",
            description="The person who requested this OCI recipe build.",
            required=True,
            readonly=True,
        )
    )
    # The schema is patched to `IOCIRecipe` in
    # `lp.oci.interfaces.webservice`.
    recipe = exported(
        Reference(
            Interface,
            title="The OCI recipe to build.",
            required=True,
            readonly=True,
        )
    )
    distro_arch_series = exported(
        Reference(
            IDistroArchSeries,
            title="The series and architecture for which to build.",
            required=True,
            readonly=True,
        )
    )
    distro_series = Attribute("The `IDistroSeries` this build is for.")
    distribution = Attribute("The `IDistribution` this build is for.")
    archive = Attribute(
        "The `IArchive` the build is filed under: the distribution's "
        "main archive."
    )
    arch_tag = exported(
        TextLine(title="Architecture tag", required=True, readonly=True)
    )
    score = exported(
        Int(
            title="Score of the related build farm job (if any).",
            required=False,
            readonly=True,
        )
    )

    # `IBuildFarmJob`'s fields, exported under the names Launchpad's
    # `IBuildFarmJob` and `IPackageBuild` give them in each version
    # (``datecreated``, ``datebuilt``, ``buildstate`` and
    # ``build_log_url`` from 1.0 on).
    title = exported(
        TextLine(title="Title", required=False, readonly=True), as_of="beta"
    )
    status = exported(
        Choice(
            title="Status",
            required=True,
            vocabulary=BuildStatus,
            readonly=True,
            description="The current status of the job.",
        ),
        ("1.0", dict(exported_as="buildstate")),
        as_of="beta",
    )
    date_created = exported(
        Datetime(
            title="Date created",
            required=True,
            readonly=True,
            description="The timestamp when the build farm job was created.",
        ),
        ("1.0", dict(exported_as="datecreated")),
        as_of="beta",
    )
    date_started = exported(
        Datetime(
            title="Date started",
            required=False,
            readonly=True,
            description="The timestamp when the build farm job was started.",
        ),
        as_of="devel",
    )
    date_finished = exported(
        Datetime(
            title="Date finished",
            required=False,
            readonly=True,
            description=(
                "The timestamp when the build farm job was finished."
            ),
        ),
        ("1.0", dict(exported_as="datebuilt")),
        as_of="beta",
    )
    duration = exported(
        Timedelta(
            title="Duration",
            required=False,
            readonly=True,
            description="Duration interval, calculated when the "
            "result gets collected.",
        ),
        as_of="devel",
    )
    date_first_dispatched = exported(
        Datetime(
            title="Date first dispatched",
            required=False,
            readonly=True,
            description=(
                "The actual build start time. Set when the build is "
                "dispatched the first time and not changed in subsequent "
                "build attempts."
            ),
        )
    )
    builder = exported(
        Reference(
            title="Builder",
            schema=IBuilder,
            required=False,
            readonly=True,
            description="The builder assigned to this job.",
        )
    )
    dependencies = exported(
        TextLine(
            title="Dependencies",
            required=False,
            readonly=True,
            description=(
                "Debian-like dependency line that must be satisfied before "
                "attempting to build this request."
            ),
        ),
        as_of="beta",
    )
    can_be_retried = exported(
        Bool(
            title="Can be retried",
            required=True,
            readonly=True,
            description="Whether this build record can be retried.",
        )
    )
    can_be_cancelled = exported(
        Bool(
            title="Can be cancelled",
            required=True,
            readonly=True,
            description="Whether this build record can be cancelled.",
        )
    )
    log_url = exported(
        TextLine(
            title="Build Log URL",
            required=False,
            readonly=True,
            description="A URL for the build log. None if there is no "
            "log available.",
        ),
        ("1.0", dict(exported_as="build_log_url")),
        as_of="beta",
    )
    upload_log_url = exported(
        TextLine(
            title="Upload Log URL",
            required=False,
            readonly=True,
            description="A URL for failed upload logs. "
            "Will be None if there was no failure.",
        )
    )
    is_private = exported(
        Bool(
            title="Private",
            required=False,
            readonly=True,
            description="Whether or not the build is private.",
        ),
        exported_as="private",
    )

    oci_archive_url = exported(
        TextLine(
            title="OCI archive URL",
            required=False,
            readonly=True,
            description=(
                "The URL of this build's images as one OCI "
                "archive (<build>/+archive/oci); None unless the build "
                "is FULLYBUILT."
            ),
        )
    )
    oci_archive_size = exported(
        Int(
            title="OCI archive size",
            required=False,
            readonly=True,
            description=(
                "The size in bytes of the OCI archive; None unless the "
                "build is FULLYBUILT."
            ),
        )
    )
    oci_archive_sha256 = exported(
        TextLine(
            title="OCI archive SHA-256",
            required=False,
            readonly=True,
            description=(
                "The hex SHA-256 of the bytes oci_archive_url serves "
                "(the archive is deterministic), as the archive checksum "
                "job stored it (``lp-oci run-jobs``); None until then, "
                "and unless the build is FULLYBUILT."
            ),
        )
    )
    docker_archive_url = exported(
        TextLine(
            title="Docker archive URL",
            required=False,
            readonly=True,
            description=(
                "The URL of this build's images as one Docker "
                "archive (<build>/+archive/docker); None unless the build "
                "is FULLYBUILT."
            ),
        )
    )
    docker_archive_size = exported(
        Int(
            title="Docker archive size",
            required=False,
            readonly=True,
            description=(
                "The size in bytes of the Docker archive; None unless the "
                "build is FULLYBUILT."
            ),
        )
    )
    docker_archive_sha256 = exported(
        TextLine(
            title="Docker archive SHA-256",
            required=False,
            readonly=True,
            description=(
                "The hex SHA-256 of the bytes docker_archive_url serves "
                "(the archive is deterministic), as the archive checksum "
                "job stored it (``lp-oci run-jobs``); None until then, "
                "and unless the build is FULLYBUILT."
            ),
        )
    )

    # Not Launchpad's: what the build's files hold, for Docker 25+
    # archives.
    upload_format = exported(
        TextLine(
            title="Upload format",
            required=False,
            readonly=True,
            description=(
                "How the builder filed the images: 'oci' (an OCI image "
                "layout: index.json and blobs) or 'legacy' (manifest.json "
                "and digests.json); None before the upload."
            ),
        )
    )
    images = exported(
        List(
            title="Images",
            value_type=Dict(key_type=TextLine()),
            required=False,
            readonly=True,
            description=(
                "The images of a FULLYBUILT build, each with "
                "'manifest_digest' (None for legacy uploads, which have "
                "no manifest), 'config_digest', 'platform', 'names' and "
                "'layers', each layer with 'digest', 'diff_id', 'size', "
                "'media_type' and 'transfer' ('fetched' from the builder, "
                "'reused' from an earlier build, or 'foreign': not stored)."
            ),
        )
    )
    layer_summaries = exported(
        List(
            title="Layers",
            value_type=Dict(key_type=TextLine()),
            required=False,
            readonly=True,
            description=(
                "Every layer file of the build, in the order added, with "
                "'digest', 'diff_id', 'size', 'media_type' and 'transfer' "
                "('fetched' or 'reused')."
            ),
        ),
        exported_as="layers",
    )
    upload_log = Attribute("The upload log `ILibraryFileAlias`, or None.")
    # Not Launchpad's, which keeps the reason only in the build log,
    # the upload log or the builder's failnotes (where it is kept here
    # too).
    failure_reason = exported(
        TextLine(
            title="Why the build or its upload failed",
            description=(
                "A one-line summary of why the build failed, for builds "
                "that failed to build or to upload; None otherwise.  The "
                "build log and the upload log say more."
            ),
            required=False,
            readonly=True,
        )
    )

    manifest = Attribute("The `ILibraryFileAlias` of manifest.json, or None.")
    digests = Attribute("The `ILibraryFileAlias` of digests.json, or None.")
    index = Attribute(
        "The OCI image index (the `ILibraryFileAlias` of index.json) of a "
        "build that filed an OCI image layout, or None."
    )
    manifest_data = Attribute("manifest.json parsed, or None.")
    digests_data = Attribute("digests.json parsed, or None.")
    index_data = Attribute("index.json parsed, or None.")
    image_manifests = Attribute(
        "The image manifests that index.json lists (read with "
        "`lp.oci.model.ocilayout`, each checked against its descriptor), "
        "as a list of (`Digest`, parsed manifest) pairs; empty for "
        "legacy builds."
    )
    layers = Attribute(
        "The build's layers as `OCILayer` tuples (digest, diff_id, size, "
        "media_type, library_file, oci_file), in the order added."
    )

    def getFiles():
        """Retrieve the build's `IOCIFile` records.

        :return: A result set of (`IOCIFile`, `ILibraryFileAlias`,
            `ILibraryFileContent`), ordered by file name.
        """

    def getFileByName(filename):
        """The `ILibraryFileAlias` of the build with this file name.

        The name may be that of the build log, the upload log or any of
        the build's `OCIFile`s.

        :raises NotFoundError: if there is none.
        """

    def getLayerFileByDigest(layer_file_digest):
        """Retrieve a layer file by the digest.

        Files of an OCI upload are found by their blob digests; those of a
        legacy upload by their digests.json digest, or by their blob
        digest where that is the same.

        :param layer_file_digest: A `Digest`, or its text, either
            ``sha256:<hex>`` or legacy bare hex (``sha256:<hex>`` also
            finds rows recorded under the bare hex).
        :raises NotFoundError: if no file of this build has the digest.
        :return: An (`IOCIFile`, `ILibraryFileAlias`, `ILibraryFileContent`)
            tuple.
        """

    @export_read_operation()
    @operation_for_version("devel")
    def getFileUrls():
        """URLs of all the files produced by this build.

        Each is below the build's own URL
        (``<build>/+files/<filename>``), not the librarian's, so that a
        private build's files are only reachable through the build.
        A FULLYBUILT build's two generated archives follow the files
        (``<build>/+archive/oci`` and ``<build>/+archive/docker``).
        """

    def getArchiveChecksum(format_name, compute=True):
        """The stored size and sha256 of one of the build's archives.

        Stored (`OCIArchiveChecksum`) by ``lp-oci run-jobs``
        (`run_archive_checksum_jobs`), not at upload time; when not
        stored yet and ``compute`` is true, computed by streaming the
        archive and added to the store (kept if the caller commits).
        The web service never computes it: `oci_archive_sha256` and
        `docker_archive_sha256` are None until the job has run.

        :param format_name: ``"oci"`` or ``"docker"``.
        :param compute: whether to stream the archive when nothing is
            stored (reading every blob of the build).
        :return: An object with ``size`` and ``sha256`` (hex), or None
            unless the build is FULLYBUILT and its files make an image.
        """

    registry_upload_jobs = Attribute(
        "Registry upload jobs for this build, newest first."
    )
    last_registry_upload_job = Attribute(
        "The newest registry upload job for this build, or None."
    )

    registry_upload_status = exported(
        Choice(
            title="Registry upload status",
            vocabulary=OCIRecipeBuildRegistryUploadStatus,
            required=True,
            readonly=True,
        )
    )

    registry_upload_error_summary = exported(
        TextLine(
            title="Registry upload error summary",
            description=(
                "The error summary, if any, from the last attempt to "
                "upload this build to a registry."
            ),
            required=False,
            readonly=True,
        )
    )

    registry_upload_errors = exported(
        List(
            title="Detailed registry upload errors",
            description=(
                "The registry's errors from the last attempt to upload "
                "this build."
            ),
            value_type=Dict(key_type=TextLine()),
            required=False,
            readonly=True,
        )
    )

    def getUploadProblems():
        """Why the build's files do not make a complete image.

        Harness only, and stricter than `verifySuccessfulUpload`, whose
        failure it also reports.  For an OCI-layout build, every manifest
        index.json lists (read with `lp.oci.model.ocilayout`) must be
        present with its config and layers, each with the size and
        sha256 its descriptor gives.  For a legacy build, manifest.json
        and digests.json must agree and every digest in digests.json
        must be present.

        :return: A list of one-line messages; empty if nothing is wrong.
        """

    def verifySuccessfulUpload():
        """Whether the upload left the build its files (as Launchpad's).

        Some file must have a layer digest (compared with None in SQL).
        A build with an OCI image index must have, for every file
        recorded under a digest, the content that digest names; a
        legacy build must have manifest.json and digests.json.
        """

    def hasMoreRecentBuild():
        """Whether a newer build of the same recipe and architecture has
        been built successfully."""


class IOCIRecipeBuildEdit(Interface):
    """`IOCIRecipeBuild` attributes that need launchpad.Edit."""

    @export_write_operation()
    @operation_for_version("devel")
    def retry():
        """Restore the build record to its initial state.

        Build record loses its history, is moved to NEEDSBUILD and a new
        BuildQueue entry is created for it.

        :raises CannotBeRetried: unless `can_be_retried`.
        """

    @export_write_operation()
    @operation_for_version("devel")
    def cancel():
        """Cancel the build if it is either pending or in progress.

        If the build is in progress, it is marked as CANCELLING until the
        build farm stops it and marks it CANCELLED; if it is pending, it
        is marked CANCELLED at once and removed from the build queue.
        Otherwise this does nothing.
        """

    def addFile(
        lfa,
        layer_file_digest=None,
        diff_id=None,
        media_type=None,
        size=None,
        kind=None,
    ):
        """Add a file to this build.

        :param lfa: An `ILibraryFileAlias`.
        :param layer_file_digest: The digest of the file (a `Digest` or
            its text; bare hex is taken as sha256).  For OCI-layout builds,
            the digest of every blob; for legacy builds, of each layer.
        :param diff_id: For layers, the digest of the uncompressed layer.
        :param media_type: The media type the image gives the blob.
        :param size: The size of the blob; by default that of ``lfa``.
        :param kind: An `OCIFileKind`; by default guessed from the file
            name and whether a digest was given.
        :return: The new `IOCIFile`.
        """

    @export_write_operation()
    @operation_for_version("devel")
    def scheduleRegistryUpload():
        """Schedule an upload of this build to the recipe's registry.

        :raises CannotScheduleRegistryUpload: if the build is not in a
            state where an upload can be scheduled.
        """


@exported_as_webservice_entry(
    singular_name="oci_recipe_build",
    plural_name="oci_recipe_builds",
    as_of="beta",
)
class IOCIRecipeBuild(IOCIRecipeBuildEdit, IOCIRecipeBuildView):
    """A build record for an OCI recipe."""


@exported_as_webservice_collection(IOCIRecipeBuild)
class IOCIRecipeBuildSet(Interface):
    """Creating and finding OCI recipe builds."""

    @collection_default_content(user=REQUEST_USER)
    def findVisible(user=None):
        """The builds ``user`` may see, newest first.

        :param user: An `IWebServiceAccount`, or None for anonymous
            users, who see only builds that are not private.
        """

    def new(
        requester,
        recipe,
        distro_arch_series,
        date_created=None,
        build_request=None,
    ):
        """Create an `IOCIRecipeBuild` and its `IBuildFarmJobDB`.

        :param requester: The `IPerson` asking for the build.
        :param distro_arch_series: The `IDistroArchSeries` to build for;
            the build runs on its processor and is filed under its
            distribution's main archive.
        :param build_request: Unused; Launchpad's build requests are not
            implemented.
        """

    def getByID(build_id):
        """The `IOCIRecipeBuild` with this id, or None."""


class IOCIFile(Interface):
    """A link between an OCI recipe build and a file in the librarian."""

    id = Int(title="ID", required=True, readonly=True)
    build = Attribute("The `IOCIRecipeBuild` that produced this file.")
    library_file = Attribute("The `ILibraryFileAlias` holding the file.")
    layer_file_digest = Attribute(
        "The `Digest` of the file's content (for legacy pulled layers,"
        " the registry's digest), or None."
    )
    diff_id = Attribute("The `Digest` of the uncompressed layer, or None.")
    media_type = TextLine(title="Media type", required=False, readonly=True)
    size = Int(title="Size in bytes", required=False, readonly=True)
    kind = Choice(vocabulary=OCIFileKind, required=True, readonly=True)
    date_last_used = Datetime(
        title="The time this file was last used in a build.",
        required=True,
        readonly=False,
    )

    def markUsed(date=None):
        """Record that this file was (re)used, now or at ``date``."""


class IOCIFileSet(Interface):
    """Finding `IOCIFile`s across builds."""

    def getByLayerDigest(layer_file_digest):
        """Return an `IOCIFile` with the matching layer_file_digest.

        Files of private builds (restricted library files) are not
        returned, so that no other build can reuse them.  The oldest
        file is returned; files recorded under ``sha256:<hex>`` or the
        legacy bare hex both match.
        """

    def getReusableLayerFile(digest, size=None):
        """Return an `IOCIFile` whose content is this blob, if any.

        A build need not fetch a layer blob that the librarian already
        holds: the content's sha256 and size match the blob's descriptor,
        and the file is neither restricted nor about to expire (within a
        day).  Whatever digest the file was recorded under counts, so
        layers of legacy builds do.  The most recently used file is
        returned; the caller marks it used.

        Harness only: ``size`` may be None (a legacy upload's layer,
        whose size nothing gives), and the content is re-read
        (`ILibrarianStorage.isIntact`): damaged content is quarantined
        and nothing returned.

        :param digest: The blob's digest, "sha256:<hex>" (or a `Digest`).
        :param size: The blob's size in bytes.
        """
