# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""OCI recipe builds and the files they produce."""

__all__ = [
    "OCIFile",
    "OCIFileSet",
    "OCILayer",
    "OCIRecipeBuild",
    "OCIRecipeBuildSet",
]

import hashlib
import json
from datetime import timedelta, timezone
from typing import Any, NamedTuple

from storm.expr import LeftJoin, Min, Not, Or
from storm.locals import Bool, DateTime, Desc, Int, Reference, Store, Unicode
from zope.component import getUtility
from zope.interface import implementer

from lp.app.errors import NotFoundError
from lp.buildmaster.enums import BuildFarmJobType, BuildStatus
from lp.buildmaster.interfaces.buildfarmjob import (
    CannotBeRetried,
    IBuildFarmJobSource,
    ISpecificBuildFarmJobSource,
)
from lp.buildmaster.model.packagebuild import PackageBuildMixin
from lp.oci.enums import OCIFileKind
from lp.oci.interfaces.ocirecipebuild import (
    CannotScheduleRegistryUpload,
    IOCIFile,
    IOCIFileSet,
    IOCIRecipeBuild,
    IOCIRecipeBuildSet,
    OCIRecipeBuildRegistryUploadStatus,
)
from lp.oci.interfaces.ocirecipebuildjob import (
    IOCIRegistryUploadJobSource,
    OCIRecipeBuildJobType,
)
from lp.oci.interfaces.ociupload import OCIUploadError
from lp.oci.model.ocilayout import (
    OCILayoutError,
    parse_index,
    parse_manifest,
)
from lp.oci.model.ociupload import (
    parse_legacy_upload,
    read_json_library_file,
    read_library_file_bytes,
)
from lp.oci.security import can_view
from lp.services.database.constants import MAX_DATABASE_ID, utc_now
from lp.services.database.digestcol import DigestCol, raw_digest_text
from lp.services.database.enumcol import DBEnum
from lp.services.database.interfaces import IPrimaryStore, IStore
from lp.services.database.stormbase import StormBase
from lp.services.job.interfaces.job import JobStatus
from lp.services.librarian.browser import ProxiedLibraryFileAlias
from lp.services.librarian.model import LibraryFileAlias, LibraryFileContent
from lp.services.librarian.storage import get_librarian_storage
from lp.services.webapp.publisher import canonical_url
from ocitypes.digest import Digest

# Launchpad's `BuildFarmJobMixin.can_be_retried`.
RETRYABLE_STATUSES = (
    BuildStatus.FAILEDTOBUILD,
    BuildStatus.MANUALDEPWAIT,
    BuildStatus.CHROOTWAIT,
    BuildStatus.FAILEDTOUPLOAD,
    BuildStatus.CANCELLED,
    BuildStatus.SUPERSEDED,
)

# OCIFile.layer_file_digest is character(80), as in Launchpad: room for
# "sha256:<hex>" but not for sha512 digests.
LAYER_FILE_DIGEST_LENGTH = 80


def _as_digest(value):
    """A `Digest` from a `Digest` or its text (bare hex is sha256)."""
    if isinstance(value, Digest):
        return value
    return Digest.from_legacy(value)


def _layer_file_digests(layer_file_digest):
    """The spellings under which a file may record this digest.

    OCI uploads record blobs by their digests ("sha256:<hex>"); legacy
    uploads record what digests.json says, which for a layer built by
    the builder is the bare hex digest of its file (rows written here
    are normalised, but older ones may hold the bare hex).

    :raises ValueError: if it is not a digest.
    """
    digest = _as_digest(layer_file_digest)
    digests = [digest]
    if digest.algorithm == "sha256":
        digests.append(raw_digest_text(digest.hex))
    return digests


def _guess_kind(filename, layer_file_digest):
    if filename == "index.json":
        return OCIFileKind.INDEX
    if filename == "manifest.json":
        return OCIFileKind.LEGACY_MANIFEST
    if filename == "digests.json":
        return OCIFileKind.LEGACY_DIGESTS
    if layer_file_digest is not None:
        return OCIFileKind.LAYER
    return OCIFileKind.OTHER


class OCILayer(NamedTuple):
    """A layer of a build, as recorded."""

    digest: Any
    diff_id: Any
    size: Any
    media_type: Any
    library_file: Any
    oci_file: Any


@implementer(IOCIFile)
class OCIFile(StormBase):
    """See `IOCIFile`."""

    __storm_table__ = "OCIFile"

    id = Int(name="id", primary=True)

    build_id = Int(name="build", allow_none=False)
    build = Reference(build_id, "OCIRecipeBuild.id")

    library_file_id = Int(name="library_file", allow_none=False)
    library_file = Reference(library_file_id, "LibraryFileAlias.id")

    layer_file_digest = DigestCol(name="layer_file_digest", allow_none=True)

    date_last_used = DateTime(
        name="date_last_used", tzinfo=timezone.utc, allow_none=False
    )

    diff_id = DigestCol(name="diff_id", allow_none=True)
    media_type = Unicode(name="media_type", allow_none=True)
    size = Int(name="size", allow_none=True)
    kind = DBEnum(name="kind", enum=OCIFileKind, allow_none=False)

    def __init__(
        self,
        build,
        library_file,
        layer_file_digest=None,
        diff_id=None,
        media_type=None,
        size=None,
        kind=OCIFileKind.OTHER,
    ):
        """Construct an `OCIFile`."""
        super().__init__()
        self.build = build
        self.library_file = library_file
        self.layer_file_digest = layer_file_digest
        self.diff_id = diff_id
        self.media_type = media_type
        self.size = size
        self.kind = kind
        self.date_last_used = utc_now()

    def __repr__(self):
        return "<OCIFile %s %s of build %s>" % (
            self.id,
            self.kind.name,
            self.build_id,
        )

    def markUsed(self, date=None):
        """See `IOCIFile`."""
        self.date_last_used = date or utc_now()


class OCIArchiveChecksum(StormBase):
    """The size and sha256 of one of a build's generated archives."""

    __storm_table__ = "OCIArchiveChecksum"

    id = Int(name="id", primary=True)
    build_id = Int(name="build", allow_none=False)
    format = Unicode(name="format", allow_none=False)
    size = Int(name="size", allow_none=False)
    sha256 = Unicode(name="sha256", allow_none=False)

    def __init__(self, build, format, size, sha256):
        super().__init__()
        self.build_id = build.id
        self.format = format
        self.size = size
        self.sha256 = sha256


@implementer(IOCIFileSet)
class OCIFileSet:
    """See `IOCIFileSet`."""

    def getByLayerDigest(self, layer_file_digest):
        """See `IOCIFileSet`."""
        try:
            digests = _layer_file_digests(layer_file_digest)
        except ValueError:
            return None
        # A restricted file belongs to a private build: other builds must
        # not get it.
        return (
            IStore(OCIFile)
            .find(
                OCIFile,
                OCIFile.layer_file_digest.is_in(digests),
                LibraryFileAlias.id == OCIFile.library_file_id,
                LibraryFileAlias.restricted == False,  # noqa: E712
            )
            .order_by(OCIFile.id)
            .first()
        )

    def getReusableLayerFile(self, digest, size=None):
        """See `IOCIFileSet`."""
        digest = str(digest)
        if not digest.startswith("sha256:"):
            return None
        sha256 = digest[len("sha256:") :]
        conditions = [
            LibraryFileAlias.id == OCIFile.library_file_id,
            LibraryFileContent.id == LibraryFileAlias.contentID,
            LibraryFileContent.sha256 == sha256,
            LibraryFileAlias.restricted == False,  # noqa: E712
            Or(
                LibraryFileAlias.expires == None,  # noqa: E711
                LibraryFileAlias.expires > utc_now() + timedelta(days=1),
            ),
        ]
        # Harness only: a legacy upload's layer has no size to match.
        if size is not None:
            conditions.append(LibraryFileContent.filesize == size)
        oci_file = (
            IStore(OCIFile)
            .find(OCIFile, *conditions)
            .order_by(Desc(OCIFile.date_last_used), OCIFile.id)
            .first()
        )
        # Harness only: verified, not trusted.  Damaged content is
        # quarantined and the layer fetched again.
        if oci_file is not None and not get_librarian_storage().isIntact(
            sha256, oci_file.library_file.content.filesize
        ):
            return None
        return oci_file


@implementer(IOCIRecipeBuild)
class OCIRecipeBuild(PackageBuildMixin, StormBase):
    """See `IOCIRecipeBuild`."""

    __storm_table__ = "OCIRecipeBuild"

    job_type = BuildFarmJobType.OCIRECIPEBUILD

    id = Int(name="id", primary=True)

    build_farm_job_id = Int(name="build_farm_job", allow_none=False)
    build_farm_job = Reference(build_farm_job_id, "BuildFarmJob.id")

    requester_id = Int(name="requester", allow_none=False)
    requester = Reference(requester_id, "Person.id")

    recipe_id = Int(name="recipe", allow_none=False)
    recipe = Reference(recipe_id, "OCIRecipe.id")

    processor_id = Int(name="processor", allow_none=False)
    processor = Reference(processor_id, "Processor.id")

    distro_arch_series_id = Int(name="distro_arch_series", allow_none=True)
    distro_arch_series = Reference(
        distro_arch_series_id, "DistroArchSeries.id"
    )

    virtualized = Bool(name="virtualized", allow_none=False)

    status = DBEnum(name="status", enum=BuildStatus, allow_none=False)

    date_created = DateTime(
        name="date_created", tzinfo=timezone.utc, allow_none=False
    )
    date_started = DateTime(name="date_started", tzinfo=timezone.utc)
    date_finished = DateTime(name="date_finished", tzinfo=timezone.utc)
    date_first_dispatched = DateTime(
        name="date_first_dispatched", tzinfo=timezone.utc
    )

    builder_id = Int(name="builder")
    builder = Reference(builder_id, "Builder.id")

    log_id = Int(name="log")
    log = Reference(log_id, "LibraryFileAlias.id")

    upload_log_id = Int(name="upload_log")
    upload_log = Reference(upload_log_id, "LibraryFileAlias.id")

    dependencies = Unicode(name="dependencies")

    failure_count = Int(name="failure_count", allow_none=False)

    # Not Launchpad's: see `IOCIRecipeBuildView.failure_reason`.
    failure_reason = Unicode(name="failure_reason")

    def __init__(
        self,
        build_farm_job,
        requester,
        recipe,
        distro_arch_series,
        processor,
        virtualized,
        date_created,
    ):
        """Construct an `OCIRecipeBuild`."""
        super().__init__()
        self.build_farm_job = build_farm_job
        self.requester = requester
        self.recipe = recipe
        self.distro_arch_series = distro_arch_series
        self.processor = processor
        self.virtualized = virtualized
        self.date_created = date_created
        self.status = BuildStatus.NEEDSBUILD
        self.failure_count = 0

    def __repr__(self):
        return "<OCIRecipeBuild ~%s/%s/+build/%s>" % (
            self.recipe.owner_name,
            self.recipe.name,
            self.id,
        )

    @property
    def title(self):
        """See `IOCIRecipeBuild`."""
        return "%s build of ~%s/%s" % (
            self.arch_tag,
            self.recipe.owner_name,
            self.recipe.name,
        )

    @property
    def arch_tag(self):
        """See `IOCIRecipeBuild`."""
        return self.distro_arch_series.architecturetag

    @property
    def distro_series(self):
        """See `IOCIRecipeBuild`."""
        return self.distro_arch_series.distroseries

    @property
    def distribution(self):
        """See `IOCIRecipeBuild`."""
        return self.distro_series.distribution

    @property
    def archive(self):
        """See `IOCIRecipeBuild`."""
        return self.distribution.main_archive

    @property
    def is_private(self):
        """See `IBuildFarmJob`."""
        return bool(self.recipe.private or self.archive.private)

    private = is_private

    def calculateScore(self):
        """See `BuildFarmJobMixin`."""
        # Launchpad's fixed score for OCI recipe builds.
        return 2510

    def getFiles(self):
        """See `IOCIRecipeBuild`."""
        result = Store.of(self).find(
            (OCIFile, LibraryFileAlias, LibraryFileContent),
            OCIFile.build == self.id,
            LibraryFileAlias.id == OCIFile.library_file_id,
            LibraryFileContent.id == LibraryFileAlias.contentID,
        )
        return result.order_by(LibraryFileAlias.filename, OCIFile.id)

    def getFileByName(self, filename):
        """See `IOCIRecipeBuild`."""
        origin = [
            LibraryFileAlias,
            LeftJoin(OCIFile, LibraryFileAlias.id == OCIFile.library_file_id),
        ]
        logs = [i for i in (self.log_id, self.upload_log_id) if i is not None]
        condition = OCIFile.build == self.id
        if logs:
            condition = Or(LibraryFileAlias.id.is_in(logs), condition)
        file_object = (
            Store.of(self)
            .using(*origin)
            .find(
                LibraryFileAlias,
                condition,
                LibraryFileAlias.filename == filename,
            )
            .order_by(LibraryFileAlias.id)
            .first()
        )
        if file_object is None:
            raise NotFoundError(filename)
        return file_object

    def _findFileByDigest(self, layer_file_digest):
        """The build's (`OCIFile`, alias, content) with a digest, or None.

        :raises ValueError: if it is not a digest.
        """
        return (
            Store.of(self)
            .find(
                (OCIFile, LibraryFileAlias, LibraryFileContent),
                OCIFile.build == self.id,
                LibraryFileAlias.id == OCIFile.library_file_id,
                LibraryFileContent.id == LibraryFileAlias.contentID,
                OCIFile.layer_file_digest.is_in(
                    _layer_file_digests(layer_file_digest)
                ),
            )
            .order_by(OCIFile.id)
            .first()
        )

    def getLayerFileByDigest(self, layer_file_digest):
        """See `IOCIRecipeBuild`."""
        try:
            file_object = self._findFileByDigest(layer_file_digest)
        except ValueError:
            file_object = None
        if file_object is not None:
            return file_object
        raise NotFoundError(layer_file_digest)

    def addFile(
        self,
        lfa,
        layer_file_digest=None,
        diff_id=None,
        media_type=None,
        size=None,
        kind=None,
    ):
        """See `IOCIRecipeBuild`."""
        if layer_file_digest is not None:
            layer_file_digest = _as_digest(layer_file_digest)
            if len(str(layer_file_digest)) > LAYER_FILE_DIGEST_LENGTH:
                raise ValueError(
                    f"{layer_file_digest} is too long for "
                    "OCIFile.layer_file_digest"
                )
        if diff_id is not None:
            diff_id = _as_digest(diff_id)
        if kind is None:
            kind = _guess_kind(lfa.filename, layer_file_digest)
        if size is None and lfa.content is not None:
            size = lfa.content.filesize
        oci_file = OCIFile(
            build=self,
            library_file=lfa,
            layer_file_digest=layer_file_digest,
            diff_id=diff_id,
            media_type=media_type,
            size=size,
            kind=kind,
        )
        IPrimaryStore(OCIFile).add(oci_file)
        return oci_file

    @property
    def duration(self):
        """See `IOCIRecipeBuild`."""
        if self.date_started is None or self.date_finished is None:
            return None
        return self.date_finished - self.date_started

    @property
    def log_url(self):
        """See `IOCIRecipeBuild`."""
        if self.log is None:
            return None
        return ProxiedLibraryFileAlias(self.log, self).http_url

    build_log_url = log_url

    @property
    def score(self):
        """See `IOCIRecipeBuild`."""
        bq = self.buildqueue_record
        return None if bq is None else bq.lastscore

    @property
    def can_be_retried(self):
        """See `IOCIRecipeBuild`.

        Launchpad's rule (`BuildFarmJobMixin.can_be_retried`): a failed,
        cancelled or superseded build, that is not in the queue.
        """
        return (
            self.status in RETRYABLE_STATUSES
            and self.buildqueue_record is None
        )

    @property
    def can_be_cancelled(self):
        """See `IOCIRecipeBuild`."""
        if self.buildqueue_record is None:
            return False
        return self.status in (BuildStatus.NEEDSBUILD, BuildStatus.BUILDING)

    def resetBuild(self):
        """Forget the last attempt, as Launchpad's `resetBuild`."""
        self.build_farm_job.status = self.status = BuildStatus.NEEDSBUILD
        self.build_farm_job.date_finished = None
        self.date_started = self.date_finished = None
        self.clearBuilder()
        self.log = self.upload_log = None
        self.dependencies = None
        self.failure_count = 0
        self.failure_reason = None

    def retry(self):
        """See `IOCIRecipeBuild`."""
        if not self.can_be_retried:
            raise CannotBeRetried(self.id)
        self.resetBuild()
        self.queueBuild()

    def cancel(self):
        """See `IOCIRecipeBuild`."""
        if not self.can_be_cancelled:
            return
        bq = self.buildqueue_record
        if self.status == BuildStatus.BUILDING:
            # The build farm (the lp-oci run building it) stops it.
            self.updateStatus(BuildStatus.CANCELLING)
        else:
            bq.destroySelf()
            self.updateStatus(BuildStatus.CANCELLED)

    @property
    def upload_log_url(self):
        """See `IOCIRecipeBuild`."""
        if self.upload_log is None:
            return None
        return ProxiedLibraryFileAlias(self.upload_log, self).http_url

    @property
    def upload_format(self):
        """See `IOCIRecipeBuild`."""
        if self.index is not None:
            return "oci"
        if self.digests is not None:
            return "legacy"
        return None

    def _layerTransfers(self, layers):
        """{`OCIFile` id: "fetched" or "reused"} for ``layers``.

        A layer was reused when an earlier `OCIFile` (of another build)
        already recorded the same librarian file; otherwise the build
        farm fetched it from the builder.
        """
        ids = {layer.oci_file.library_file_id for layer in layers}
        if not ids:
            return {}
        first = dict(
            Store.of(self)
            .find(
                (OCIFile.library_file_id, Min(OCIFile.id)),
                OCIFile.library_file_id.is_in(ids),
            )
            .group_by(OCIFile.library_file_id)
        )
        return {
            layer.oci_file.id: (
                "reused"
                if first[layer.oci_file.library_file_id] < layer.oci_file.id
                else "fetched"
            )
            for layer in layers
        }

    @staticmethod
    def _layerSummary(layer, transfer):
        return {
            "digest": str(layer.digest) if layer.digest else None,
            "diff_id": str(layer.diff_id) if layer.diff_id else None,
            "size": layer.size,
            "media_type": layer.media_type,
            "transfer": transfer,
        }

    @property
    def layer_summaries(self):
        """See `IOCIRecipeBuild`."""
        layers = self.layers
        transfers = self._layerTransfers(layers)
        return [
            self._layerSummary(layer, transfers[layer.oci_file.id])
            for layer in layers
        ]

    @property
    def images(self):
        """See `IOCIRecipeBuild`."""
        archive = self._getArchiveOrNone("oci")
        if archive is None:
            return []
        layers = self.layers
        transfers = self._layerTransfers(layers)
        by_sha256 = {}
        for layer in layers:
            content = layer.library_file.content
            if content is not None:
                by_sha256.setdefault(content.sha256, layer)
        legacy = self.upload_format == "legacy"
        images = []
        for image in archive.images:
            image_layers = []
            for descriptor in image.layers:
                layer = by_sha256.get(descriptor.digest.hex)
                if layer is None:
                    image_layers.append(
                        {
                            "digest": str(descriptor.digest),
                            "diff_id": None,
                            "size": descriptor.size,
                            "media_type": descriptor.media_type,
                            "transfer": "foreign",
                        }
                    )
                else:
                    image_layers.append(
                        self._layerSummary(layer, transfers[layer.oci_file.id])
                    )
            images.append(
                {
                    "manifest_digest": (
                        None if legacy else str(image.manifest.digest)
                    ),
                    "config_digest": str(image.config.digest),
                    "platform": (
                        str(image.platform) if image.platform else None
                    ),
                    "names": list(image.names),
                    "layers": image_layers,
                }
            )
        return images

    def getFileUrls(self):
        """See `IOCIRecipeBuild`."""
        urls = [
            ProxiedLibraryFileAlias(lfa, self).http_url
            for _, lfa, _ in self.getFiles()
        ]
        return urls + [
            url
            for url in (self.oci_archive_url, self.docker_archive_url)
            if url is not None
        ]

    def _archiveUrl(self, format_name):
        if self.status != BuildStatus.FULLYBUILT:
            return None
        return "%s/+archive/%s" % (canonical_url(self), format_name)

    @property
    def oci_archive_url(self):
        """See `IOCIRecipeBuild`."""
        return self._archiveUrl("oci")

    @property
    def docker_archive_url(self):
        """See `IOCIRecipeBuild`."""
        return self._archiveUrl("docker")

    def getArchiveChecksum(self, format_name, compute=True):
        """See `IOCIRecipeBuild`."""
        if self.status != BuildStatus.FULLYBUILT:
            return None
        store = IStore(OCIArchiveChecksum)
        row = store.find(
            OCIArchiveChecksum, build_id=self.id, format=format_name
        ).one()
        if row is None and compute:
            # Circular import.
            from lp.oci.interfaces.ociarchive import OCIArchiveError

            archive = self._getArchiveOrNone(format_name)
            if archive is None:
                return None
            try:
                sha256 = hashlib.sha256()
                size = 0
                for chunk in archive.iterBytes():
                    sha256.update(chunk)
                    size += len(chunk)
            except OCIArchiveError:
                return None
            row = OCIArchiveChecksum(
                self, format_name, size, sha256.hexdigest()
            )
            IPrimaryStore(OCIArchiveChecksum).add(row)
        return row

    def _getArchiveOrNone(self, format_name):
        """The `IOCIArchive` in ``format_name``, or None if there is none
        (not FULLYBUILT, or its files make no image)."""
        # Circular import.
        from lp.oci.interfaces.ociarchive import (
            CannotExportOCIArchive,
            IOCIArchiveSet,
            OCIArchiveError,
            OCIArchiveFormat,
        )

        try:
            return getUtility(IOCIArchiveSet).getArchive(
                self, OCIArchiveFormat.items[format_name.upper()]
            )
        except (CannotExportOCIArchive, OCIArchiveError):
            return None

    def _archiveSize(self, format_name):
        # Stored with the checksum, else laid out from the documents
        # alone (`OCIArchive.size`): no blob is read.
        row = self.getArchiveChecksum(format_name, compute=False)
        if row is not None:
            return row.size
        archive = self._getArchiveOrNone(format_name)
        return None if archive is None else archive.size

    def _archiveSHA256(self, format_name):
        # Only what the archive checksum job stored: computing it means
        # reading every blob, which no GET may cost.
        row = self.getArchiveChecksum(format_name, compute=False)
        return None if row is None else row.sha256

    @property
    def oci_archive_size(self):
        """See `IOCIRecipeBuild`."""
        return self._archiveSize("oci")

    @property
    def oci_archive_sha256(self):
        """See `IOCIRecipeBuild`."""
        return self._archiveSHA256("oci")

    @property
    def docker_archive_size(self):
        """See `IOCIRecipeBuild`."""
        return self._archiveSize("docker")

    @property
    def docker_archive_sha256(self):
        """See `IOCIRecipeBuild`."""
        return self._archiveSHA256("docker")

    def _getFileOrNone(self, filename):
        try:
            return self.getFileByName(filename)
        except NotFoundError:
            return None

    @property
    def manifest(self):
        """See `IOCIRecipeBuild`."""
        return self._getFileOrNone("manifest.json")

    @property
    def digests(self):
        """See `IOCIRecipeBuild`."""
        return self._getFileOrNone("digests.json")

    @property
    def index(self):
        """See `IOCIRecipeBuild`."""
        return self._getFileOrNone("index.json")

    def _readJSONOrNone(self, lfa):
        return None if lfa is None else read_json_library_file(lfa)

    @property
    def manifest_data(self):
        """See `IOCIRecipeBuild`."""
        return self._readJSONOrNone(self.manifest)

    @property
    def digests_data(self):
        """See `IOCIRecipeBuild`."""
        return self._readJSONOrNone(self.digests)

    @property
    def index_data(self):
        """See `IOCIRecipeBuild`."""
        return self._readJSONOrNone(self.index)

    def _readImageManifests(self):
        """The `OCIImageManifest`s of the stored index, read with ocilayout.

        :raises OCILayoutError: if a document is not what it should be.
        """
        index = self.index
        if index is None:
            return []
        return [
            parse_manifest(self._readBlob(descriptor, "Manifest"), descriptor)
            for descriptor in parse_index(
                read_library_file_bytes(index, "index.json")
            )
        ]

    @property
    def image_manifests(self):
        """See `IOCIRecipeBuild`."""
        return [
            (
                Digest.parse(manifest.descriptor.digest),
                json.loads(manifest.data),
            )
            for manifest in self._readImageManifests()
        ]

    @property
    def layers(self):
        """See `IOCIRecipeBuild`."""
        rows = (
            Store.of(self)
            .find(
                (OCIFile, LibraryFileAlias),
                OCIFile.build == self.id,
                OCIFile.kind == OCIFileKind.LAYER,
                LibraryFileAlias.id == OCIFile.library_file_id,
            )
            .order_by(OCIFile.id)
        )
        return [
            OCILayer(
                oci_file.layer_file_digest,
                oci_file.diff_id,
                oci_file.size,
                oci_file.media_type,
                lfa,
                oci_file,
            )
            for oci_file, lfa in rows
        ]

    def _getVerifiedBlob(self, descriptor, what):
        """This build's file holding the blob ``descriptor`` describes.

        :param descriptor: An `OCIDescriptor`.
        :raises OCIUploadError: if there is none, or its content does
            not have the descriptor's digest and size.
        """
        digest = descriptor.digest
        found = self._findFileByDigest(digest)
        if found is None:
            raise OCIUploadError(f"{what} {digest} is missing")
        _, lfa, content = found
        if content.sha256 != descriptor.hex:
            raise OCIUploadError(
                f"{what} {digest} has content with sha256 {content.sha256}"
            )
        if content.filesize != descriptor.size:
            raise OCIUploadError(
                f"{what} {digest} is {content.filesize} bytes, its "
                f"descriptor says {descriptor.size}"
            )
        return lfa

    def _readBlob(self, descriptor, what):
        """The bytes of a document (manifest, config) of this build."""
        lfa = self._getVerifiedBlob(descriptor, what)
        return read_library_file_bytes(lfa, descriptor.digest)

    def _checkOCIUpload(self, problems):
        seen = set()
        for manifest in self._readImageManifests():
            for what, descriptor in [("Config", manifest.config)] + [
                ("Layer", layer) for layer in manifest.layers
            ]:
                if descriptor.digest in seen:
                    continue
                seen.add(descriptor.digest)
                try:
                    self._getVerifiedBlob(descriptor, what)
                except OCIUploadError as e:
                    problems.append(str(e))

    def _checkLegacyUpload(self, problems):
        manifest = self.manifest_data
        digests = self.digests_data
        if manifest is None:
            problems.append("manifest.json is missing")
        if digests is None:
            problems.append("digests.json is missing")
        if problems:
            return
        for image in parse_legacy_upload(manifest, digests):
            if self._getFileOrNone(image.config_name) is None:
                problems.append(f"Config {image.config_name} is missing")
            for layer in image.layers:
                # Pulled layers are recorded under their registry digest,
                # which is not that of the file: only presence is checked.
                if self._findFileByDigest(layer.digest) is None:
                    problems.append(
                        f"Layer {layer.digest} ({layer.diff_id}) is missing"
                    )

    def getUploadProblems(self):
        """See `IOCIRecipeBuild`."""
        if self.getFiles().is_empty():
            return ["The build has no files"]
        problems = []
        try:
            if self.index is not None:
                self._checkOCIUpload(problems)
            else:
                self._checkLegacyUpload(problems)
        except (OCIUploadError, OCILayoutError) as e:
            problems.append(" ".join(str(e).split()))
        if not problems and not self.verifySuccessfulUpload():
            problems.append(
                "A file does not have the content its digest names, or "
                "no file has a digest"
            )
        return problems

    def verifySuccessfulUpload(self):
        """See `IPackageBuild`."""
        layer_files = Store.of(self).find(
            OCIFile,
            OCIFile.build == self.id,
            OCIFile.layer_file_digest != None,  # noqa: E711
        )
        layer_files_present = not layer_files.is_empty()
        if self.index is not None:
            # An OCI upload, whose blobs are recorded by their digests:
            # each file must have the content its digest names.
            for oci_file, _, content in self.getFiles():
                digest = oci_file.layer_file_digest
                if digest is not None and digest != Digest(
                    "sha256", content.sha256
                ):
                    return False
            return layer_files_present
        metadata_present = (
            self.manifest is not None and self.digests is not None
        )
        return layer_files_present and metadata_present

    @property
    def registry_upload_jobs(self):
        """See `IOCIRecipeBuild`."""
        # Circular import.
        from lp.oci.model.ocirecipebuildjob import OCIRecipeBuildJob

        jobs = (
            Store.of(self)
            .find(
                OCIRecipeBuildJob,
                OCIRecipeBuildJob.build_id == self.id,
                OCIRecipeBuildJob.job_type
                == OCIRecipeBuildJobType.REGISTRY_UPLOAD,
            )
            .order_by(Desc(OCIRecipeBuildJob.job_id))
        )
        return [job.makeDerived() for job in jobs]

    @property
    def last_registry_upload_job(self):
        """See `IOCIRecipeBuild`."""
        jobs = self.registry_upload_jobs
        return jobs[0] if jobs else None

    @property
    def registry_upload_status(self):
        """See `IOCIRecipeBuild`."""
        if self.status == BuildStatus.SUPERSEDED:
            return OCIRecipeBuildRegistryUploadStatus.SUPERSEDED
        job = self.last_registry_upload_job
        if job is None or job.job.status == JobStatus.SUSPENDED:
            return OCIRecipeBuildRegistryUploadStatus.UNSCHEDULED
        elif job.job.status in (JobStatus.WAITING, JobStatus.RUNNING):
            return OCIRecipeBuildRegistryUploadStatus.PENDING
        elif job.job.status == JobStatus.COMPLETED:
            return OCIRecipeBuildRegistryUploadStatus.UPLOADED
        else:
            return OCIRecipeBuildRegistryUploadStatus.FAILEDTOUPLOAD

    @property
    def registry_upload_error_summary(self):
        """See `IOCIRecipeBuild`."""
        job = self.last_registry_upload_job
        return job and job.error_summary

    @property
    def registry_upload_errors(self):
        """See `IOCIRecipeBuild`."""
        job = self.last_registry_upload_job
        return (job and job.errors) or []

    def scheduleRegistryUpload(self):
        """See `IOCIRecipeBuild`."""
        if not self.recipe.can_upload_to_registry:
            raise CannotScheduleRegistryUpload(
                "Cannot upload this build to registries because the recipe "
                "is not properly configured."
            )
        if not self.was_built or self.getFiles().is_empty():
            raise CannotScheduleRegistryUpload(
                "Cannot upload this build because it has no files."
            )
        status = self.registry_upload_status
        if (
            status == OCIRecipeBuildRegistryUploadStatus.SUPERSEDED
            or self.hasMoreRecentBuild()
        ):
            # As upstream: nobody asks for an older build's images to
            # be pushed over a newer one's.  (A push that was already
            # waiting is skipped only once a newer build was pushed.)
            raise CannotScheduleRegistryUpload(
                "Cannot upload this build because it is superseded: a "
                "more recent build of the recipe for the same "
                "architecture has been built."
            )
        if status == OCIRecipeBuildRegistryUploadStatus.PENDING:
            raise CannotScheduleRegistryUpload(
                "An upload of this build is already in progress."
            )
        elif status == OCIRecipeBuildRegistryUploadStatus.UPLOADED:
            raise CannotScheduleRegistryUpload(
                "Cannot upload this build because it has already been "
                "uploaded."
            )
        return getUtility(IOCIRegistryUploadJobSource).create(self)

    def hasMoreRecentBuild(self):
        """See `IOCIRecipeBuild`."""
        return not (
            IStore(self)
            .find(
                OCIRecipeBuild,
                OCIRecipeBuild.recipe_id == self.recipe_id,
                OCIRecipeBuild.processor_id == self.processor_id,
                OCIRecipeBuild.status == BuildStatus.FULLYBUILT,
                OCIRecipeBuild.date_created > self.date_created,
            )
            .is_empty()
        )


@implementer(IOCIRecipeBuildSet, ISpecificBuildFarmJobSource)
class OCIRecipeBuildSet:
    """See `IOCIRecipeBuildSet`."""

    def new(
        self,
        requester,
        recipe,
        distro_arch_series,
        date_created=None,
        build_request=None,
    ):
        """See `IOCIRecipeBuildSet`."""
        date_created = date_created or utc_now()
        build_farm_job = getUtility(IBuildFarmJobSource).new(
            OCIRecipeBuild.job_type,
            date_created=date_created,
            archive=distro_arch_series.distroseries.distribution.main_archive,
        )
        build = OCIRecipeBuild(
            build_farm_job,
            requester,
            recipe,
            distro_arch_series,
            distro_arch_series.processor,
            True,
            date_created,
        )
        store = IPrimaryStore(OCIRecipeBuild)
        store.add(build)
        # Give the build its id (and so its build cookie) now.
        store.flush()
        return build

    def getByID(self, build_id):
        """See `IOCIRecipeBuildSet`."""
        if (
            not isinstance(build_id, int)
            or isinstance(build_id, bool)
            or not 0 < build_id <= MAX_DATABASE_ID
        ):
            # No row has it; the database drivers overflow on some.
            return None
        return IStore(OCIRecipeBuild).get(OCIRecipeBuild, build_id)

    def findVisible(self, user=None):
        """See `IOCIRecipeBuildSet`."""
        # Circular import.
        from lp.oci.model.ocirecipe import OCIRecipe

        clauses = [OCIRecipe.id == OCIRecipeBuild.recipe_id]
        if user is None:
            clauses.append(Not(OCIRecipe.private))
        elif not user.admin:
            clauses.append(
                Or(Not(OCIRecipe.private), OCIRecipe.owner_name == user.name)
            )
        builds = (
            IStore(OCIRecipeBuild)
            .find(OCIRecipeBuild, *clauses)
            .order_by(
                Desc(OCIRecipeBuild.date_created), Desc(OCIRecipeBuild.id)
            )
        )
        # A private distribution makes a build private too; rare enough
        # to check here rather than in SQL.
        return [build for build in builds if can_view(build, user)]

    def getByBuildFarmJob(self, build_farm_job):
        """See `ISpecificBuildFarmJobSource`."""
        return (
            IStore(OCIRecipeBuild)
            .find(
                OCIRecipeBuild,
                OCIRecipeBuild.build_farm_job == build_farm_job,
            )
            .one()
        )
