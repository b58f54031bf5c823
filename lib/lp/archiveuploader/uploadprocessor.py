# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Processing build uploads, as Launchpad's process-upload does.

The build farm leaves each build's files in
``<base_fsroot>/incoming/<leaf>``, where the leaf is
``<timestamp>-<build cookie>`` (e.g. ``20260101-120000-OCIRECIPEBUILD-7``)
and the files sit under ``<archive id>/<distribution name>/``.

`UploadProcessor.processBuildUpload` finds the build from the leaf name
and, if it is UPLOADING, runs its upload (`OCIRecipeUpload.process`) in
the processor's transaction:

- accepted (the upload is processed and `getUploadProblems` finds
  nothing, the patched upstream `verifySuccessfulUpload` included):
  commit; the build is FULLYBUILT and the leaf moves to ``accepted/``;
- rejected (the upload raised `UploadError`, or does not verify): abort,
  remove the librarian content the upload stored that nothing refers
  to, mark the build FAILEDTOUPLOAD with the upload's log in the
  librarian (`upload_log`), commit, and move the leaf to ``failed/``.

A dry run aborts instead of committing and moves nothing.  A conflict
with a concurrent transaction (`lp.services.database.retry`: e.g. two
uploads storing the same new layer at once on PostgreSQL) aborts and
processes the upload again, up to `RETRY_ATTEMPTS` times.  Any other
exception is a bug: the transaction is aborted, the stored content
removed (when no other upload is storing content: see
`OCIRecipeUpload.removeUnreferencedContent`), the leaf left where it
is and the exception propagates.

The checksums of the build's generated archives are not computed here
(that would read every blob twice more): `lp-oci run-jobs` stores them
(`run_archive_checksum_jobs`); until then the web service states none,
and `IOCIRecipeBuild.getArchiveChecksum` computes one when asked.

Deviations from Launchpad: build uploads only (no source or user
uploads), OCI recipe builds only, no mail.
"""

__all__ = [
    "BuildUploadHandler",
    "UploadProcessor",
    "UploadStatusEnum",
    "parse_build_upload_leaf_name",
]

import logging
import os
import shutil
import time
from enum import Enum

import transaction
from zope.component import getUtility
from zope.interface.interfaces import ComponentLookupError

from lp.archiveuploader.ocirecipeupload import OCIRecipeUpload
from lp.archiveuploader.utils import UploadError
from lp.buildmaster.enums import BuildStatus
from lp.buildmaster.interfaces.buildfarmjob import ISpecificBuildFarmJobSource
from lp.services.database.retry import (
    RETRY_ATTEMPTS,
    is_retryable_error,
    retry_delay,
)
from lp.services.log.logger import BufferLogger


class UploadStatusEnum(Enum):
    """What became of an upload; the value is where its leaf goes."""

    ACCEPTED = "accepted"
    REJECTED = "failed"


def parse_build_upload_leaf_name(name):
    """``(job type name, build id)`` from an upload's leaf name.

    :raises ValueError: if the name does not end with a build cookie.
    """
    parts = name.split("-")
    if len(parts) < 3:
        raise ValueError(f"{name!r} has no build cookie")
    job_type, job_id = parts[-2:]
    if not job_id.isdigit():
        raise ValueError(f"{name!r} has no build id")
    return job_type, int(job_id)


class UploadProcessor:
    """Process the build uploads under ``base_fsroot``.

    :param base_fsroot: The directory holding ``incoming``, ``accepted``
        and ``failed``.
    :param dry_run: Abort every transaction and move nothing.
    :param log: A `logging.Logger` (by default this module's).
    """

    def __init__(self, base_fsroot, dry_run=False, log=None):
        self.base_fsroot = base_fsroot
        self.dry_run = dry_run
        self.log = log or logging.getLogger(__name__)

    def commit(self):
        """Commit, or abort on a dry run."""
        if self.dry_run:
            self.log.info("Dry run, aborting transaction.")
            transaction.abort()
        else:
            transaction.commit()

    def locateDirectories(self, fsroot):
        """The leaf directories waiting in ``fsroot``, oldest first."""
        if not os.path.isdir(fsroot):
            return []
        return sorted(
            name
            for name in os.listdir(fsroot)
            if os.path.isdir(os.path.join(fsroot, name))
        )

    def processUploadQueue(self):
        """Process every upload waiting in ``incoming``."""
        fsroot = os.path.join(self.base_fsroot, "incoming")
        for upload in self.locateDirectories(fsroot):
            self.processBuildUpload(fsroot, upload)

    def processBuildUpload(self, fsroot, upload):
        """Process the build upload ``upload`` (a leaf name) in ``fsroot``.

        :return: An `UploadStatusEnum`, or None if the upload was left
            alone (no such build, or a build not UPLOADING).
        """
        return BuildUploadHandler(self, fsroot, upload).process()


class BuildUploadHandler:
    """One build upload."""

    def __init__(self, processor, fsroot, upload):
        self.processor = processor
        self.fsroot = fsroot
        self.upload = upload
        self.upload_path = os.path.join(fsroot, upload)
        self.build = None
        # The one-line reason a rejected upload was rejected.
        self.failure_reason = None

    def _findBuild(self):
        try:
            job_type, job_id = parse_build_upload_leaf_name(self.upload)
            source = getUtility(ISpecificBuildFarmJobSource, job_type)
        except (ValueError, ComponentLookupError):
            self.processor.log.warning(
                "Unable to extract build id from leaf name %s, skipping.",
                self.upload,
            )
            return None
        build = source.getByID(job_id)
        if build is None:
            self.processor.log.warning(
                "Unable to find %s with id %d, skipping.", job_type, job_id
            )
        return build

    def process(self):
        """See `UploadProcessor.processBuildUpload`."""
        build = self._findBuild()
        if build is None:
            return None
        if build.status != BuildStatus.UPLOADING:
            self.processor.log.warning(
                "Expected build status to be UPLOADING, was %s. Ignoring.",
                build.status.name,
            )
            return None
        self.build = build
        logger = BufferLogger(parent=self.processor.log)
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            upload = OCIRecipeUpload(self.upload_path, logger)
            try:
                result = self._processOnce(upload, logger)
            except Exception as e:
                if attempt == RETRY_ATTEMPTS or not is_retryable_error(e):
                    raise
                transaction.abort()
                upload.removeUnreferencedContent()
                logger.warning(
                    "Conflict with a concurrent transaction (%s); "
                    "processing the upload again (attempt %d of %d)",
                    " ".join(str(e).split()),
                    attempt + 1,
                    RETRY_ATTEMPTS,
                )
                time.sleep(retry_delay(attempt))
                if build.status != BuildStatus.UPLOADING:
                    return None
                continue
            break
        self.moveProcessedUpload(result.value, logger)
        return result

    def _processOnce(self, upload, logger):
        """Process and commit (or reject) the upload, once."""
        build = self.build
        result = self.processOCIRecipe(upload, logger)
        if result == UploadStatusEnum.ACCEPTED:
            logger.info("Committing the transaction.")
            self.processor.commit()
            if self.processor.dry_run:
                upload.removeUnreferencedContent()
        else:
            transaction.abort()
            upload.removeUnreferencedContent()
            if not self.processor.dry_run:
                build.updateStatus(
                    BuildStatus.FAILEDTOUPLOAD, builder=build.builder
                )
                build.failure_reason = self.failure_reason
                build.storeUploadLog(logger.getLogBuffer())
                self.processor.commit()
        return result

    def processOCIRecipe(self, upload, logger):
        """Run ``upload`` for the build; abort on any other error.

        :return: `UploadStatusEnum.ACCEPTED` or `REJECTED`.
        """
        logger.info("Processing OCI image upload %s", self.upload_path)
        try:
            upload.process(self.build)
            problems = self.build.getUploadProblems()
            if problems:
                raise UploadError(
                    "The upload is not a complete image: %s"
                    % "; ".join(problems)
                )
            self.scheduleRegistryUpload(logger)
        except UploadError as e:
            logger.error(str(e))
            self.failure_reason = str(e)
            return UploadStatusEnum.REJECTED
        except BaseException as e:
            if not is_retryable_error(e):
                logger.exception(
                    "Unhandled exception processing upload %s",
                    self.upload_path,
                )
            transaction.abort()
            upload.removeUnreferencedContent()
            raise
        return UploadStatusEnum.ACCEPTED

    def scheduleRegistryUpload(self, logger):
        """Queue the push of a FULLYBUILT build to its recipe's registries.

        Upstream does this in a subscriber to the build's modified event
        (`lp.oci.subscribers.ocirecipebuild`); here the one place a build
        becomes FULLYBUILT calls it, in the same transaction.
        """
        build = self.build
        if (
            build.status == BuildStatus.FULLYBUILT
            and build.recipe.can_upload_to_registry
        ):
            job = build.scheduleRegistryUpload()
            logger.info("Scheduled %r.", job)

    def moveProcessedUpload(self, destination, logger):
        """Move the leaf to ``<base_fsroot>/<destination>``."""
        if self.processor.dry_run:
            logger.debug("Dry run, not moving %s.", self.upload_path)
            return
        target_dir = os.path.join(self.processor.base_fsroot, destination)
        os.makedirs(target_dir, exist_ok=True)
        target = os.path.join(target_dir, self.upload)
        logger.debug("Moving upload %s to %s", self.upload_path, target)
        shutil.move(self.upload_path, target)
