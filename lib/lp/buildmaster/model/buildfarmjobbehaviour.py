# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Base class for build farm job behaviours.

`BuildFarmJobBehaviourBase.handleStatus` is what the build farm manager
calls with each ``status()`` of the builder running a build, as in
Launchpad: while the builder is BUILDING the build's status is only
refreshed; once it is WAITING, the build log is stored in the librarian
and either the files of a successful build are collected
(`handleSuccess`, which calls the subclass's `_downloadFiles`) or the
failure is recorded.  Then, in one transaction, the build gets its new
status (UPLOADING hands it to the upload processor) and its `BuildQueue`
entry is destroyed.  GIVENBACK, BUILDERFAIL and an ABORTED build that
was not being cancelled raise `BuildDaemonError`, so that the manager
resets the job or the builder, as in Launchpad; so does any error
fetching the build log.  Cleaning the builder afterwards is the
manager's job, as in Launchpad.

Files are collected into
``<upload_root>/grabbing/<leaf>/<archive id>/<distribution name>/``
and, once all are there, ``grabbing/<leaf>`` is moved to
``<upload_root>/incoming/<leaf>`` for the upload processor.

Differences from Launchpad:

- every name in the filemap is checked before anything is fetched: a
  plain file name (no separator, no leading dot, no NUL, at most
  `MAX_FILE_NAME_LENGTH` bytes) that lands directly in the upload
  directory, with a well-formed SHA-1 (Launchpad checks only that the
  real path starts with the upload path, one file at a time);
- a build whose files cannot be collected (the builder unreachable after
  retries, a file missing or corrupt, a hostile name, a malformed upload)
  becomes FAILEDTOUPLOAD with the reason in `failure_reason`, rather
  than leaving the error to the manager, and nothing is left in
  ``grabbing`` (Launchpad leaves partial downloads there);
- a WAITING builder reporting another build's cookie is an error;
- failed builds get the last line of the log tail (or the missing
  dependencies) as their `failure_reason`;
- `extractBuildStatus` raises `BuildDaemonError` on a malformed status
  rather than asserting;
- the build log is fetched by the SHA-1 the builder reports as
  ``build_log_sha1`` (and checked), falling back to launchpad-buildd's
  unchecked ``buildlog``;
- the upload root is a constructor argument (Launchpad reads
  ``config.builddmaster.root``), and no notification is sent.

As in Launchpad, the build log is gzipped and stored in the librarian
(which hashes it) on the reactor; build files are only ever written and
hashed by the download processes.
"""

__all__ = [
    "BUILDD_MANAGER_LOG_NAME",
    "BuildFarmJobBehaviourBase",
    "check_builder_file_name",
    "is_safe_file_name",
]

import gzip
import logging
import os
import re
import shutil
import tempfile
from datetime import datetime

import transaction
from twisted.internet import defer
from zope.component import getUtility
from zope.interface import implementer

from lp.buildmaster.enums import BuildStatus, WorkerBuilderStatus
from lp.buildmaster.interactor import WORKER_LOG_FILENAME, BuilderWorkerError
from lp.buildmaster.interfaces.builder import BuildDaemonError
from lp.buildmaster.interfaces.buildfarmjobbehaviour import (
    IBuildFarmJobBehaviour,
)
from lp.buildmaster.verifiedfiles import write_verified_files
from lp.services.librarian.interfaces import ILibraryFileAliasSet
from ocitypes.faultpoint import checkpoint

# The logger the build farm manager logs to.
BUILDD_MANAGER_LOG_NAME = "worker-scanner"

# How much of the builder's log tail goes into a failure reason.
MAX_REASON_LOG = 500

# The longest file name (in UTF-8 bytes) taken from a builder: well
# within NAME_MAX (255) even with the prefix and suffix a download's
# temporary name adds, and far longer than any name builders file.
MAX_FILE_NAME_LENGTH = 200

# Copying the build log into its gzip file, in chunks of this size.
_CHUNK_SIZE = 1024 * 1024

_SHA1_RE = re.compile(r"[0-9a-f]{40}")


def is_safe_file_name(name):
    """Whether a name from a builder is a plain file name.

    Refused: anything but a non-empty string, a path separator, a
    leading dot (``.``, ``..``, hidden files), NUL, a name longer than
    `MAX_FILE_NAME_LENGTH` bytes.
    """
    return (
        isinstance(name, str)
        and bool(name)
        and len(name.encode("utf-8", "surrogatepass")) <= MAX_FILE_NAME_LENGTH
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
        and not name.startswith(".")
    )


def check_builder_file_name(name, directory):
    """The path at which a file the builder named ``name`` may be written.

    :raises BuildDaemonError: if ``name`` is not a plain file name or
        would not land directly inside ``directory``.
    """
    if not is_safe_file_name(name):
        raise BuildDaemonError(f"Build returned a file named {name!r}.")
    directory = os.path.realpath(directory)
    path = os.path.realpath(os.path.join(directory, name))
    if os.path.dirname(path) != directory:
        raise BuildDaemonError(f"Build returned a file named {name!r}.")
    return path


def _log_tail_line(worker_status):
    """The last non-empty line of the builder's log tail, or None."""
    logtail = worker_status.get("logtail")
    data = getattr(logtail, "data", logtail)
    if isinstance(data, bytes):
        data = data.decode("UTF-8", "replace")
    if not isinstance(data, str):
        return None
    lines = [line.strip() for line in data.splitlines() if line.strip()]
    return lines[-1][:MAX_REASON_LOG] if lines else None


@implementer(IBuildFarmJobBehaviour)
class BuildFarmJobBehaviourBase:
    """Ensures that all behaviours inherit the same initialization.

    :param build: The build (e.g. an `IOCIRecipeBuild`).
    :param upload_root: Where uploads are collected; a new temporary
        directory when None.
    """

    # Errors that mean the build's files cannot be collected, so that
    # the build fails rather than the manager.
    download_errors = (BuildDaemonError, BuilderWorkerError)

    # Reasons recorded for builds that failed on the builder.
    failure_reasons = {
        "PACKAGEFAIL": "The build failed on the builder",
        "DEPFAIL": "The build is waiting for dependencies",
        "CHROOTFAIL": "The builder could not set up the build environment",
        "ABORTED": "The build was cancelled",
    }

    def __init__(self, build, upload_root=None):
        self.build = build
        self.upload_root = upload_root
        self._builder = None
        self._worker = None
        self._failure_reason = None

    @property
    def archive(self):
        return self.build.archive if self.build is not None else None

    @property
    def distribution(self):
        return self.build.distribution if self.build is not None else None

    @property
    def build_cookie(self):
        """The build id the builder reports (the build's cookie)."""
        return self.build.build_cookie

    def setBuilder(self, builder, worker):
        """See `IBuildFarmJobBehaviour`."""
        self._builder = builder
        self._worker = worker

    def extraBuildArgs(self, logger=None):
        """See `IBuildFarmJobBehaviour`."""
        return {"arch_tag": self.build.arch_tag}

    def getUploadDirLeaf(self, build_cookie, now=None):
        """A directory name unique to this attempt at collecting files."""
        if now is None:
            now = datetime.now()
        return "%s-%s" % (now.strftime("%Y%m%d-%H%M%S"), build_cookie)

    def _getUploadRoot(self):
        if self.upload_root is None:
            self.upload_root = tempfile.mkdtemp(prefix="lp-uploads-")
        return os.path.abspath(self.upload_root)

    @defer.inlineCallbacks
    def transferWorkerFileToLibrarian(self, file_sha1, filename, private):
        """Transfer a file from the worker to the librarian.

        :param file_sha1: The file's SHA-1, or `WORKER_LOG_FILENAME`.
        :param filename: The name to give the librarian file alias.  The
            build log is gzipped and gets ``.gz`` appended.
        :param private: Whether the file is restricted.
        :return: A Deferred firing with the `ILibraryFileAlias`.
        """
        fd, out_file_name = tempfile.mkstemp(suffix=".buildlog")
        os.close(fd)
        try:
            yield self._worker.getFile(file_sha1, out_file_name)
            if filename == self.getLogFileName():
                gz_name = out_file_name + ".gz"
                try:
                    with open(out_file_name, "rb") as src, gzip.GzipFile(
                        gz_name, mode="wb", mtime=0
                    ) as dst:
                        shutil.copyfileobj(src, dst, _CHUNK_SIZE)
                    os.replace(gz_name, out_file_name)
                finally:
                    if os.path.exists(gz_name):
                        os.unlink(gz_name)
                filename += ".gz"
            size = os.path.getsize(out_file_name)
            with open(out_file_name, "rb") as out_file:
                library_file = getUtility(ILibraryFileAliasSet).create(
                    filename,
                    size,
                    out_file,
                    contentType=(
                        "application/gzip"
                        if filename.endswith(".gz")
                        else "application/octet-stream"
                    ),
                    restricted=private,
                    allow_zero_length=True,
                )
        finally:
            os.unlink(out_file_name)
        return library_file

    def getLogFileName(self):
        """Return the preferred file name for this job's log."""
        return "buildlog.txt"

    def getLogFromWorker(self, queue_item, worker_status=None):
        """Return a Deferred which fires when the log is in the librarian.

        The log is fetched by the ``build_log_sha1`` the builder reports
        if any, else by launchpad-buildd's name for it.
        """
        sha1 = (worker_status or {}).get("build_log_sha1")
        if not (isinstance(sha1, str) and _SHA1_RE.fullmatch(sha1)):
            sha1 = WORKER_LOG_FILENAME
        return self.transferWorkerFileToLibrarian(
            sha1,
            self.getLogFileName(),
            getattr(self.build, "is_private", False),
        )

    @defer.inlineCallbacks
    def storeLogFromWorker(self, worker_status):
        """Store the build log in the librarian and attach it to the build."""
        lfa = yield self.getLogFromWorker(
            self.build.buildqueue_record, worker_status
        )
        self.build.setLog(lfa)
        transaction.commit()

    def verifySuccessfulBuild(self):
        """See `IBuildFarmJobBehaviour`."""
        if self.build.status not in (
            BuildStatus.NEEDSBUILD,
            BuildStatus.BUILDING,
            BuildStatus.GATHERING,
            BuildStatus.CANCELLING,
        ):
            raise AssertionError(
                f"Cannot collect {self.build_cookie}: it is "
                f"{self.build.status.name}"
            )

    @staticmethod
    def extractBuildStatus(worker_status):
        """Read the build status name.

        :param worker_status: The status dict from `BuilderWorker.status`.
        :return: The unqualified status name, e.g. "OK".
        :raises BuildDaemonError: if the status is malformed.
        """
        status_string = worker_status.get("build_status")
        lead_string = "BuildStatus."
        if not (
            isinstance(status_string, str)
            and status_string.startswith(lead_string)
        ):
            raise BuildDaemonError(
                f"Malformed build status: {status_string!r}"
            )
        return status_string[len(lead_string) :]

    def _checkBuildCookie(self, worker_status):
        build_id = worker_status.get("build_id")
        if build_id is not None and build_id != self.build_cookie:
            raise BuildDaemonError(
                f"Builder is working on {build_id!r}, not "
                f"{self.build_cookie!r}"
            )

    def _failureReason(self, status, worker_status):
        reason = self.failure_reasons[status]
        if status == "DEPFAIL":
            detail = worker_status.get("dependencies")
        else:
            detail = _log_tail_line(worker_status)
        if detail:
            reason = f"{reason}: {detail}"
        return reason

    @defer.inlineCallbacks
    def handleStatus(self, bq, worker_status):
        """See `IBuildFarmJobBehaviour`."""
        if bq != self.build.buildqueue_record:
            raise AssertionError(
                "%r != %r" % (bq, self.build.buildqueue_record)
            )
        logger = logging.getLogger(BUILDD_MANAGER_LOG_NAME)
        builder_status = worker_status["builder_status"]
        failure_reason = None

        if builder_status == WorkerBuilderStatus.WAITING:
            # The build has finished.
            self._checkBuildCookie(worker_status)
            status = self.extractBuildStatus(worker_status)
            fail_status_map = {
                "PACKAGEFAIL": BuildStatus.FAILEDTOBUILD,
                "DEPFAIL": BuildStatus.MANUALDEPWAIT,
                "CHROOTFAIL": BuildStatus.CHROOTWAIT,
            }
            if self.build.status == BuildStatus.CANCELLING:
                fail_status_map["ABORTED"] = BuildStatus.CANCELLED
            logger.info(
                "Processing finished job %s from builder %s: %s",
                self.build_cookie,
                getattr(bq.builder, "name", None),
                status,
            )
            if status == "OK":
                yield self.storeLogFromWorker(worker_status)
                # handleSuccess writes outside the database transaction
                # (the upload directory), so a failure between here and
                # the commit below could duplicate the upload.
                build_status = yield self.handleSuccess(worker_status, logger)
                failure_reason = self._failure_reason
            elif status in fail_status_map:
                yield self.storeLogFromWorker(worker_status)
                build_status = fail_status_map[status]
                failure_reason = self._failureReason(status, worker_status)
            else:
                raise BuildDaemonError(
                    "Build returned unexpected status: %r" % status
                )
        else:
            # The build status remains unchanged.
            build_status = bq.specific_build.status

        # Set the status and (if the build has finished) dequeue the build
        # atomically.  Setting the status to UPLOADING hands the build to
        # the upload processor, so doing that before the BuildQueue is
        # removed would race.
        self.build.updateStatus(
            build_status, builder=bq.builder, worker_status=worker_status
        )
        if failure_reason is not None:
            self.build.failure_reason = failure_reason
        if builder_status == WorkerBuilderStatus.WAITING:
            bq.destroySelf()
        transaction.commit()

    def _checkFilemap(self, worker_status, upload_path):
        """Check every name and SHA-1 of the filemap before any fetch.

        :return: {name: (sha1, path)}.
        """
        filemap = worker_status.get("filemap")
        if not isinstance(filemap, dict):
            raise BuildDaemonError("Builder returned no filemap")
        checked = {}
        for name, sha1 in filemap.items():
            path = check_builder_file_name(name, upload_path)
            if not (isinstance(sha1, str) and _SHA1_RE.fullmatch(sha1)):
                raise BuildDaemonError(
                    f"Builder returned a bad SHA-1 for {name!r}"
                )
            checked[name] = (sha1, path)
        return checked

    @defer.inlineCallbacks
    def _downloadFiles(self, worker_status, upload_path, logger):
        """Fetch the build's files into ``upload_path``.

        This base version fetches every file of the filemap (checked by
        `handleSuccess`), with the worker's bounded concurrency.
        """
        files = self._checkFilemap(worker_status, upload_path)
        for name, (sha1, _) in sorted(files.items()):
            logger.info(
                "Grabbing file: %s (%s)", name, self._worker.getURL(sha1)
            )
        names = sorted(files)
        results = yield self._worker.getFiles(
            [files[name] for name in names], logger=logger
        )
        self.downloads = dict(zip(names, results))

    @defer.inlineCallbacks
    def handleSuccess(self, worker_status, logger):
        """Handle a build that built successfully.

        Fetch the files into ``grabbing``, then move them to ``incoming``
        for the upload processor.

        :return: A Deferred firing with the build's new status:
            UPLOADING, or FAILEDTOUPLOAD if the files could not be
            collected (the reason is then in `_failure_reason`).
        """
        build = self.build
        self._failure_reason = None
        self.verifySuccessfulBuild()

        # <upload_root>/grabbing/<leaf>/<archive id>/<distribution name>/
        root = self._getUploadRoot()
        upload_leaf = self.getUploadDirLeaf(self.build_cookie)
        grab_dir = os.path.join(root, "grabbing", upload_leaf)
        logger.debug("Storing build result at '%s'", grab_dir)
        upload_path = os.path.join(
            grab_dir, str(build.archive.id), build.distribution.name
        )
        os.makedirs(upload_path)

        # Indicate that downloads are in progress.
        build.updateStatus(BuildStatus.GATHERING, worker_status=worker_status)
        transaction.commit()

        try:
            self._checkFilemap(worker_status, upload_path)
            yield self._downloadFiles(worker_status, upload_path, logger)
            # What the downloads verified, so that upload processing
            # does not read the files again (see `lp.buildmaster.
            # verifiedfiles`).
            write_verified_files(
                grab_dir, upload_path, getattr(self, "downloads", {}).values()
            )
        except self.download_errors as e:
            shutil.rmtree(grab_dir, ignore_errors=True)
            self._failure_reason = " ".join(
                f"Cannot collect the build's files: {e}".split()
            )
            logger.warning("%s: %s", self.build_cookie, self._failure_reason)
            return BuildStatus.FAILEDTOUPLOAD
        except BaseException:
            shutil.rmtree(grab_dir, ignore_errors=True)
            raise

        transaction.commit()

        # Move the directory used to grab the files into incoming
        # atomically, so the upload processor never sees a partial one.
        logger.info(
            "Gathered %s completely. Moving %s to uploader queue.",
            self.build_cookie,
            upload_leaf,
        )
        target_dir = os.path.join(root, "incoming")
        os.makedirs(target_dir, exist_ok=True)
        checkpoint("fetch.gathered")
        os.rename(grab_dir, os.path.join(target_dir, upload_leaf))
        return BuildStatus.UPLOADING
