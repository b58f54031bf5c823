# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The part of build farm job behaviours that all kinds of build share.

`BuildFarmJobBehaviourBase.handleStatus` is what the build farm master
calls with each ``status()`` of the builder running a build: while the
builder is BUILDING it only notes that the build started; once it is
WAITING it either collects the files of a successful build
(`handleSuccess`, which calls the subclass's `_downloadFiles`) or
records the failure, then cleans the builder.

Files are collected into ``<upload_root>/grabbing/<leaf>/<archive
id>/<distribution name>`` and, once
all are there, moved to ``<upload_root>/incoming/<leaf>`` for upload
processing, as Launchpad does.  A build whose files cannot be collected
(the builder is unreachable after retries, a file is missing or
corrupt, a name is hostile, the upload is malformed) is marked
FAILEDTOUPLOAD with the reason, and nothing is left in ``grabbing``.

Deviations from Launchpad: the master is synchronous (no Deferreds),
`handleStatus` takes no `BuildQueue` and commits its changes itself,
`_downloadFiles` takes the filemap rather than the whole status, and
build logs are not stored (the builder does not serve them yet).
"""

__all__ = [
    "BuildFarmJobBehaviourBase",
    "check_builder_file_name",
    "is_safe_file_name",
]

import logging
import os
import re
import shutil
import tempfile
import time

import transaction
from storm.store import Store
from zope.interface import implementer

from lp.buildmaster.enums import (
    BuildStatus,
    WorkerBuilderStatus,
    WorkerBuildStatus,
)
from lp.buildmaster.interactor import BuilderWorkerError
from lp.buildmaster.interfaces.builder import BuildDaemonError
from lp.buildmaster.interfaces.buildfarmjobbehaviour import (
    IBuildFarmJobBehaviour,
)

# How much of the builder's log tail goes into a failure reason.
MAX_REASON_LOG = 500

# The longest file name (in UTF-8 bytes) taken from a builder: well
# within NAME_MAX (255) even with the prefix and suffix a download's
# temporary name adds, and far longer than any name builders file.
MAX_FILE_NAME_LENGTH = 200

_SHA1_RE = re.compile(r"[0-9a-f]{40}")

# Final builder verdicts other than OK: the build status they lead to
# and the failure reason recorded.
_FAILURES = {
    WorkerBuildStatus.PACKAGEFAIL: (
        BuildStatus.FAILEDTOBUILD,
        "The build failed on the builder",
    ),
    WorkerBuildStatus.DEPFAIL: (
        BuildStatus.MANUALDEPWAIT,
        "The build is waiting for dependencies",
    ),
    WorkerBuildStatus.CHROOTFAIL: (
        BuildStatus.CHROOTWAIT,
        "The builder could not set up the build environment",
    ),
    WorkerBuildStatus.ABORTED: (
        BuildStatus.CANCELLED,
        "The build was aborted",
    ),
}


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
    """See `IBuildFarmJobBehaviour`.

    :param build: The build record (e.g. an `IOCIRecipeBuild`).
    :param upload_root: Where uploads are collected; a new temporary
        directory when None.
    """

    # Errors that mean the build's files cannot be collected, so that
    # the build fails rather than the master.
    download_errors = (BuildDaemonError, BuilderWorkerError)

    def __init__(self, build, upload_root=None):
        self.build = build
        self.upload_root = upload_root
        self._builder = None
        self._worker = None

    @property
    def build_cookie(self):
        """See `IBuildFarmJobBehaviour`."""
        if self.build.id is None:
            # A new build gets its id when flushed.
            Store.of(self.build).flush()
        return "%s-%d" % (type(self.build).__name__.upper(), self.build.id)

    def setBuilder(self, builder, worker):
        """See `IBuildFarmJobBehaviour`."""
        self._builder = builder
        self._worker = worker

    def extraBuildArgs(self, logger=None):
        """See `IBuildFarmJobBehaviour`."""
        return {"arch_tag": self.build.arch_tag}

    def verifySuccessfulBuild(self):
        """See `IBuildFarmJobBehaviour`."""
        if self.build.status not in (
            BuildStatus.NEEDSBUILD,
            BuildStatus.BUILDING,
            BuildStatus.GATHERING,
        ):
            raise AssertionError(
                f"Cannot collect {self.build_cookie}: it is "
                f"{self.build.status.name}"
            )

    def _checkBuildCookie(self, worker_status):
        build_id = worker_status.get("build_id")
        if build_id is not None and build_id != self.build_cookie:
            raise BuildDaemonError(
                f"Builder is working on {build_id!r}, not "
                f"{self.build_cookie!r}"
            )

    def handleStatus(self, worker_status, logger=None):
        """See `IBuildFarmJobBehaviour`.

        :raises BuildDaemonError: if the builder is idle or busy with
            another build (the master should reset the job).
        """
        logger = logger or logging.getLogger(__name__)
        builder_status = worker_status.get("builder_status")
        if builder_status in (
            WorkerBuilderStatus.BUILDING,
            WorkerBuilderStatus.ABORTING,
        ):
            self._checkBuildCookie(worker_status)
            if self.build.status == BuildStatus.NEEDSBUILD:
                self.build.updateStatus(BuildStatus.BUILDING)
                transaction.commit()
            return None
        if builder_status != WorkerBuilderStatus.WAITING:
            raise BuildDaemonError(
                f"Builder is {builder_status!r} while {self.build_cookie} "
                "should be running"
            )
        self._checkBuildCookie(worker_status)
        build_status = worker_status.get("build_status")
        logger.info("%s finished: %s", self.build_cookie, build_status)
        if build_status == WorkerBuildStatus.OK:
            upload_path = self.handleSuccess(worker_status, logger)
        else:
            upload_path = None
            self._handleFailure(build_status, worker_status, logger)
        transaction.commit()
        if self._worker is not None:
            self._worker.clean()
        return upload_path

    def _handleFailure(self, build_status, worker_status, logger):
        if build_status in (
            WorkerBuildStatus.GIVENBACK,
            WorkerBuildStatus.BUILDERFAIL,
        ):
            # Not the build's fault: it goes back in the queue.
            logger.warning(
                "%s given back (%s)", self.build_cookie, build_status
            )
            if build_status == WorkerBuildStatus.BUILDERFAIL:
                self.build.failure_count += 1
            self.build.updateStatus(BuildStatus.NEEDSBUILD)
            return
        if build_status not in _FAILURES:
            raise BuildDaemonError(
                f"Builder returned unknown build status {build_status!r}"
            )
        status, reason = _FAILURES[build_status]
        if build_status == WorkerBuildStatus.DEPFAIL:
            dependencies = worker_status.get("dependencies")
            if dependencies:
                reason = f"{reason}: {dependencies}"
        else:
            detail = _log_tail_line(worker_status)
            if detail:
                reason = f"{reason}: {detail}"
        self._failBuild(status, reason, logger)

    def _failBuild(self, status, reason, logger):
        logger.warning("%s: %s: %s", self.build_cookie, status.name, reason)
        self.build.failure_reason = reason
        self.build.updateStatus(status)

    def getUploadDirLeaf(self):
        """A directory name unique to this attempt at collecting files."""
        return "%s-%s" % (time.strftime("%Y%m%d-%H%M%S"), self.build_cookie)

    def _getUploadRoot(self):
        if self.upload_root is None:
            self.upload_root = tempfile.mkdtemp(prefix="lp-uploads-")
        return self.upload_root

    def handleSuccess(self, worker_status, logger=None):
        """See `IBuildFarmJobBehaviour`."""
        logger = logger or logging.getLogger(__name__)
        self.verifySuccessfulBuild()
        root = self._getUploadRoot()
        leaf = self.getUploadDirLeaf()
        grab_dir = os.path.join(root, "grabbing", leaf)
        # Launchpad's layout: <leaf>/<archive id>/<distribution name>.
        upload_path = os.path.join(
            grab_dir, str(self.build.archive.id), self.build.distribution.name
        )
        os.makedirs(upload_path)
        self.build.updateStatus(BuildStatus.GATHERING)
        try:
            filemap = worker_status.get("filemap")
            if not isinstance(filemap, dict):
                raise BuildDaemonError("Builder returned no filemap")
            for name, sha1 in filemap.items():
                check_builder_file_name(name, upload_path)
                if not isinstance(sha1, str) or not _SHA1_RE.fullmatch(sha1):
                    raise BuildDaemonError(
                        f"Builder returned a bad SHA-1 for {name!r}"
                    )
            self._downloadFiles(filemap, upload_path, logger)
            self._saveBuildSpecificFiles(upload_path)
        except self.download_errors as e:
            shutil.rmtree(grab_dir, ignore_errors=True)
            self._failBuild(
                BuildStatus.FAILEDTOUPLOAD,
                f"Cannot collect the build's files: {e}",
                logger,
            )
            return None
        except BaseException:
            shutil.rmtree(grab_dir, ignore_errors=True)
            raise
        incoming = os.path.join(root, "incoming", leaf)
        os.makedirs(os.path.dirname(incoming), exist_ok=True)
        os.rename(grab_dir, incoming)
        self.build.updateStatus(BuildStatus.UPLOADING)
        logger.info("%s collected into %s", self.build_cookie, incoming)
        return incoming

    def _downloadFiles(self, filemap, upload_path, logger):
        """Fetch the build's files into ``upload_path``.

        This base version fetches every file of ``filemap`` (names were
        checked by `handleSuccess`) with bounded concurrency.
        """
        self._worker.getFiles(
            [
                (sha1, os.path.join(upload_path, name))
                for name, sha1 in sorted(filemap.items())
            ],
            logger=logger,
        )

    def _saveBuildSpecificFiles(self, upload_path):
        """Do anything a kind of build needs once its files are here."""
