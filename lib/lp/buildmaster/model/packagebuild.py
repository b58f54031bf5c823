# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""What builds that are uploaded to an archive share."""

__all__ = [
    "PackageBuildMixin",
]

import io

from zope.component import getUtility

from lp.buildmaster.enums import BuildStatus
from lp.buildmaster.model.buildfarmjob import BuildFarmJobMixin
from lp.services.database.constants import utc_now
from lp.services.librarian.interfaces import ILibraryFileAliasSet


class PackageBuildMixin(BuildFarmJobMixin):
    """A build whose results go through upload processing.

    A subclass also has `upload_log`, `dependencies`, `archive` and
    `distribution`.
    """

    def updateStatus(
        self,
        status,
        builder=None,
        worker_status=None,
        date_started=None,
        date_finished=None,
        force_invalid_transition=False,
    ):
        """See `IBuildFarmJob`.

        Also keeps the builder's unsatisfied dependencies while the build
        waits for them (MANUALDEPWAIT).
        """
        super().updateStatus(
            status,
            builder=builder,
            worker_status=worker_status,
            date_started=date_started,
            date_finished=date_finished,
            force_invalid_transition=force_invalid_transition,
        )
        if status == BuildStatus.MANUALDEPWAIT and worker_status is not None:
            self.dependencies = worker_status.get("dependencies")
        else:
            self.dependencies = None

    def storeUploadLog(self, content):
        """Store ``content`` (text) as the build's upload log.

        The log is a restricted librarian file when the build is private.
        """
        data = content.encode("utf-8")
        self.upload_log = getUtility(ILibraryFileAliasSet).create(
            "upload_%d_log.txt" % self.id,
            len(data),
            io.BytesIO(data),
            "text/plain",
            restricted=self.is_private,
            allow_zero_length=True,
        )
        return self.upload_log

    def getUploadDirLeaf(self, build_cookie, now=None):
        """The leaf name of this build's upload directory.

        ``<timestamp>-<build cookie>``, as in Launchpad.
        """
        if now is None:
            now = utc_now()
        return "%s-%s" % (now.strftime("%Y%m%d-%H%M%S"), build_cookie)
