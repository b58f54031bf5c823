# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Jobs that act on OCI recipe builds."""

__all__ = [
    "OCIRecipeBuildJob",
    "OCIRecipeBuildJobType",
    "OCIRegistryUploadJob",
    "builds_missing_archive_checksums",
    "repository_lock_key",
    "run_archive_checksum_jobs",
    "run_registry_upload_jobs",
]

import logging
import zlib
from datetime import timedelta
from urllib.parse import urlsplit

import transaction
from storm.databases.postgres import JSON
from storm.locals import Int, Or, Reference
from zope.component import getUtility
from zope.interface import implementer, provider

from lp.oci.interfaces.ocirecipebuildjob import (
    IOCIRecipeBuildJob,
    IOCIRegistryUploadJob,
    IOCIRegistryUploadJobSource,
    OCIRecipeBuildJobType,
)
from lp.oci.interfaces.ociregistryclient import (
    IOCIRegistryClient,
    OCIRegistryError,
)
from lp.oci.interfaces.ociupload import OCIUploadError
from lp.services.database.constants import utc_now
from lp.services.database.enumcol import DBEnum
from lp.services.database.interfaces import IPrimaryStore, IStore
from lp.services.database.locking import LockType, take_xact_lock
from lp.services.database.stormbase import StormBase
from lp.services.job.interfaces.job import JobStatus
from lp.services.job.model.job import Job

log = logging.getLogger(__name__)


@implementer(IOCIRecipeBuildJob)
class OCIRecipeBuildJob(StormBase):
    """See `IOCIRecipeBuildJob`."""

    __storm_table__ = "OCIRecipeBuildJob"

    job_id = Int(name="job", primary=True, allow_none=False)
    job = Reference(job_id, "Job.id")

    build_id = Int(name="build", allow_none=False)
    build = Reference(build_id, "OCIRecipeBuild.id")

    job_type = DBEnum(enum=OCIRecipeBuildJobType, allow_none=False)

    json_data = JSON("json_data", allow_none=False)

    def __init__(self, build, job_type, json_data, max_retries=0):
        super().__init__()
        self.job = Job(max_retries=max_retries)
        self.build = build
        self.job_type = job_type
        self.json_data = json_data

    def makeDerived(self):
        """See `IOCIRecipeBuildJob`."""
        if self.job_type == OCIRecipeBuildJobType.REGISTRY_UPLOAD:
            return OCIRegistryUploadJob(self)
        raise ValueError(f"Unknown job type {self.job_type!r}")


@implementer(IOCIRegistryUploadJob)
@provider(IOCIRegistryUploadJobSource)
class OCIRegistryUploadJob:
    """See `IOCIRegistryUploadJob`."""

    class_job_type = OCIRecipeBuildJobType.REGISTRY_UPLOAD

    # As upstream: up to 5 attempts in all, for failures that may pass.
    max_retries = 5
    retry_delay = timedelta(minutes=1)

    def __init__(self, context):
        self.context = context

    def __repr__(self):
        return "<OCIRegistryUploadJob for build %d>" % self.context.build_id

    @classmethod
    def create(cls, build, tags=None):
        """See `IOCIRegistryUploadJobSource`."""
        data = {"tags": list(tags)} if tags else {}
        context = OCIRecipeBuildJob(
            build, cls.class_job_type, data, max_retries=cls.max_retries
        )
        store = IPrimaryStore(OCIRecipeBuildJob)
        store.add(context)
        store.flush()
        return cls(context)

    @property
    def job(self):
        return self.context.job

    @property
    def build(self):
        return self.context.build

    @property
    def json_data(self):
        return self.context.json_data

    def _update(self, **values):
        data = dict(self.context.json_data)
        data.update(values)
        # Assign a new object so that Storm sees the change.
        self.context.json_data = data

    @property
    def error_summary(self):
        """See `IOCIRegistryUploadJob`."""
        return self.json_data.get("error_summary")

    @error_summary.setter
    def error_summary(self, summary):
        self._update(error_summary=summary)

    @property
    def errors(self):
        """See `IOCIRegistryUploadJob`."""
        return self.json_data.get("errors")

    @errors.setter
    def errors(self, errors):
        self._update(errors=errors)

    @property
    def build_uploaded(self):
        """See `IOCIRegistryUploadJob`."""
        return bool(self.json_data.get("build_uploaded", False))

    @build_uploaded.setter
    def build_uploaded(self, uploaded):
        self._update(build_uploaded=bool(uploaded))

    @property
    def tags(self):
        """See `IOCIRegistryUploadJob`."""
        return self.json_data.get("tags")

    @tags.setter
    def tags(self, tags):
        self._update(tags=list(tags) if tags else None)

    @property
    def uploaded_manifests(self):
        """See `IOCIRegistryUploadJob`."""
        return self.json_data.get("uploaded_manifests") or {}

    @uploaded_manifests.setter
    def uploaded_manifests(self, manifests):
        self._update(uploaded_manifests=manifests)

    @property
    def registry_results(self):
        """See `IOCIRegistryUploadJob`."""
        return self.json_data.get("registry_results") or {}

    @registry_results.setter
    def registry_results(self, results):
        self._update(registry_results=results)

    @property
    def manifest_list_digests(self):
        """See `IOCIRegistryUploadJob`."""
        return self.json_data.get("manifest_list_digests") or {}

    @manifest_list_digests.setter
    def manifest_list_digests(self, digests):
        self._update(manifest_list_digests=digests)

    @classmethod
    def iterReady(cls):
        """See `IOCIRegistryUploadJobSource`."""
        now = utc_now()
        rows = (
            IStore(OCIRecipeBuildJob)
            .find(
                OCIRecipeBuildJob,
                OCIRecipeBuildJob.job_type == cls.class_job_type,
                OCIRecipeBuildJob.job_id == Job.id,
                Job.status == JobStatus.WAITING,
                Or(Job.scheduled_start == None, Job.scheduled_start <= now),
            )
            .order_by(Job.id)
        )
        return [cls(row) for row in rows]

    def _lockRepositories(self):
        """Serialise tag updates of the push rules' repositories until
        commit, whichever recipe pushes there."""
        store = IStore(OCIRecipeBuildJob)
        keys = {
            repository_lock_key(rule.registry_url, rule.image_name)
            for rule in self.build.recipe.push_rules
        }
        # In one order, so that two jobs cannot wait for each other.
        for key in sorted(keys):
            take_xact_lock(store, LockType.REGISTRY_REPOSITORY, key)

    def _lockRecipe(self):
        """Serialise manifest-list updates of this recipe until commit."""
        take_xact_lock(
            IStore(OCIRecipeBuildJob),
            LockType.REGISTRY_UPLOAD,
            self.build.recipe.id,
        )

    def run(self, client=None):
        """See `IOCIRegistryUploadJob`.

        Commits: the blobs and manifests are pushed outside any lock,
        their results committed, then the manifest list is updated
        holding the recipe's lock.
        """
        client = client or getUtility(IOCIRegistryClient)
        build = self.build
        if client.updateSupersededBuilds(build):
            # A newer build of the recipe was pushed to the same tags
            # since: the registry holds them, and this build must not
            # turn them back.
            log.info("%r: the build is superseded; nothing to push", self)
            self.error_summary = (
                "superseded: a newer build was pushed to the same tags"
            )
            return
        rules = {str(rule.id) for rule in build.recipe.push_rules}
        if not rules:
            # Completing would claim a push that never happened.
            raise OCIRegistryError(
                "Nothing to push to: the recipe has no push rule any more"
            )
        if not self.build_uploaded:
            results = client.upload(build)
            self.uploaded_manifests = {
                str(rule_id): result.manifests
                for rule_id, result in results.items()
            }
            self.registry_results = {
                str(rule_id): result.to_json()
                for rule_id, result in results.items()
            }
            self.build_uploaded = True
            transaction.commit()
        self._lockRecipe()
        # Recipes pushing to one repository would otherwise merge into
        # its tag at once, each writing over the other's entries.
        self._lockRepositories()
        digests = client.uploadManifestList(None, [build], tags=self.tags)
        self.manifest_list_digests = {
            str(rule_id): {tag: str(digest) for tag, digest in tags.items()}
            for rule_id, tags in digests.items()
        }
        missing = rules - {
            rule_id
            for rule_id, tags in self.manifest_list_digests.items()
            if tags
        }
        if missing:
            # A job completes only when the registry holds its tags.
            raise OCIRegistryError(
                "No tag was set for push rules %s" % ", ".join(sorted(missing))
            )
        results = self.registry_results
        for rule_id, tags in self.manifest_list_digests.items():
            if rule_id in results:
                results[rule_id]["tag"] = ", ".join(sorted(tags))
        self.registry_results = results

    def runAndRecord(self, client=None):
        """Run this job, recording its outcome on the job and committing.

        Failures that may pass (`OCIRegistryError.transient`: the
        registry unreachable, or 408/429/5xx after the client's own
        retries) queue the job again, later, until `max_retries`; a
        definite refusal fails it at once.
        """
        self.job.start()
        self.error_summary = None
        self.errors = None
        transaction.commit()
        try:
            self.run(client=client)
        except (OCIRegistryError, OCIUploadError) as e:
            transaction.abort()
            errors = list(getattr(e, "errors", None) or [])
            self.error_summary = str(e)
            self.errors = errors
            transient = getattr(e, "transient", False)
            if transient and self.job.attempt_count < self.job.max_retries:
                delay = self.retry_delay * self.job.attempt_count
                # No earlier than the registry asked (at most a day:
                # the client bounds it).
                retry_after = getattr(e, "retry_after", None)
                if retry_after is not None:
                    delay = max(delay, timedelta(seconds=retry_after))
                self.job.queue(scheduled_start=utc_now() + delay)
                log.info("%r failed, will retry: %s", self, e)
            else:
                self.job.fail()
                log.warning("%r failed: %s", self, e)
        except KeyboardInterrupt:
            # The process was interrupted (Ctrl-C, SIGTERM): nothing is
            # wrong with the job, which is queued to run again.
            transaction.abort()
            self.error_summary = "Interrupted"
            self.job.queue()
            transaction.commit()
            raise
        except BaseException:
            transaction.abort()
            self.error_summary = "Internal error"
            self.job.fail()
            transaction.commit()
            raise
        else:
            self.job.complete()
        transaction.commit()


def repository_lock_key(registry_url, image_name):
    """The `LockType.REGISTRY_REPOSITORY` key of a registry repository."""
    parts = urlsplit(registry_url)
    name = f"{parts.netloc.lower()}{parts.path.rstrip('/')}/{image_name}"
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def run_registry_upload_jobs(client=None):
    """Run every registry upload job that is ready; return them."""
    jobs = OCIRegistryUploadJob.iterReady()
    for job in jobs:
        job.runAndRecord(client=client)
    return jobs


ARCHIVE_FORMATS = ("oci", "docker")


def builds_missing_archive_checksums():
    """FULLYBUILT builds without a stored checksum for some archive."""
    from lp.buildmaster.enums import BuildStatus
    from lp.oci.model.ocirecipebuild import OCIArchiveChecksum, OCIRecipeBuild

    store = IStore(OCIRecipeBuild)
    builds = store.find(
        OCIRecipeBuild, OCIRecipeBuild.status == BuildStatus.FULLYBUILT
    ).order_by(OCIRecipeBuild.id)
    stored = {}
    for build_id, format_name in store.find(
        (OCIArchiveChecksum.build_id, OCIArchiveChecksum.format)
    ):
        stored.setdefault(build_id, set()).add(format_name)
    return [
        build
        for build in builds
        if not set(ARCHIVE_FORMATS) <= stored.get(build.id, set())
    ]


def run_archive_checksum_jobs():
    """Compute and store the archive checksums that are missing.

    Upload processing no longer streams a new build's two archives to
    learn their sha256 (that cost two reads of all its blobs while the
    build was being accepted); this does, one build per transaction,
    for every FULLYBUILT build that lacks them, including builds
    accepted before the checksums were stored at all.  Until it has
    run, the web service states no sha256 for the build's archives
    (their sizes need no blob read and are always stated), and
    `IOCIRecipeBuild.getArchiveChecksum` computes one when asked.

    :return: ``(build, format, checksum)`` for each one computed;
        ``checksum`` is None when the build's files make no archive.
    """
    done = []
    for build in builds_missing_archive_checksums():
        for format_name in ARCHIVE_FORMATS:
            checksum = build.getArchiveChecksum(format_name)
            done.append((build, format_name, checksum))
        transaction.commit()
    return done
