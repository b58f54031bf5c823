# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `OCIRegistryUploadJob`, with a recording client, on every
backend."""

__all__ = []

import sqlite3
from datetime import timedelta

import transaction
from zope.interface import implementer

from lp.buildmaster.enums import BuildStatus
from lp.oci.interfaces.ocirecipebuild import (
    OCIRecipeBuildRegistryUploadStatus,
)
from lp.oci.interfaces.ociregistryclient import (
    IOCIRegistryClient,
    ManifestListUploadFailed,
    ManifestUploadFailed,
    OCIRegistryError,
)
from lp.oci.model.ocirecipebuildjob import (
    OCIRecipeBuildJob,
    OCIRegistryUploadJob,
    repository_lock_key,
    run_registry_upload_jobs,
)
from lp.oci.model.ociregistryclient import (
    OCIRegistryClient,
    RegistryUploadResult,
)
from lp.services.database.constants import utc_now
from lp.services.database.interfaces import IStore
from lp.services.database.locking import LockType, take_xact_lock
from lp.services.database.migration import backend_name
from lp.services.job.interfaces.job import JobStatus
from lp.testing import TestCaseWithFactory
from lp.testing.layers import (
    DatabaseLayer,
    LaunchpadZopelessLayer,
    SQLiteDatabaseLayer,
    SQLiteLaunchpadZopelessLayer,
)


def other_connection_can_lock(lock_type, key):
    """Whether another connection to the test database could take the
    advisory lock ``(lock_type, key)`` now (it lets it go at once)."""
    other = DatabaseLayer.cluster.connect(DatabaseLayer.dbname)
    try:
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_xact_lock(%s, %s)",
                (int(lock_type), key),
            )
            (taken,) = cursor.fetchone()
        return taken
    finally:
        other.close()


@implementer(IOCIRegistryClient)
class RecordingClient:
    """Records calls; fails as told."""

    def __init__(self, upload_error=None, list_error=None):
        self.calls = []
        self.upload_error = upload_error
        self.list_error = list_error

    def updateSupersededBuilds(self, build):
        return build.status == BuildStatus.SUPERSEDED

    def upload(self, build):
        self.calls.append(("upload", build))
        if self.upload_error is not None:
            raise self.upload_error
        results = {}
        for rule in build.recipe.push_rules:
            result = RegistryUploadResult(rule.registry_url, rule.image_name)
            result.manifests = [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": "sha256:" + "a" * 64,
                    "size": 10,
                    "platform": {"architecture": "amd64", "os": "linux"},
                }
            ]
            results[rule.id] = result
        return results

    def uploadManifestList(self, build_request, uploaded_builds, tags=None):
        self.calls.append(("uploadManifestList", list(uploaded_builds), tags))
        if self.list_error is not None:
            error, self.list_error = self.list_error, None
            raise error
        return {
            rule.id: {tag: "sha256:" + "b" * 64 for tag in tags or ["edge"]}
            for rule in uploaded_builds[0].recipe.push_rules
        }


class TestOCIRegistryUploadJob(TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def makeJob(self, tags=None):
        build = self.factory.makeOCIRecipeBuild(status=BuildStatus.FULLYBUILT)
        self.factory.makeOCIPushRule(recipe=build.recipe)
        self.factory.makeOCILayoutFiles(build=build)
        job = build.scheduleRegistryUpload()
        if tags:
            job.tags = tags
        transaction.commit()
        return job

    def test_iterReady(self):
        job = self.makeJob()
        later = self.makeJob()
        later.job.scheduled_start = utc_now() + timedelta(hours=1)
        done = self.makeJob()
        done.job.start()
        done.job.complete()
        transaction.commit()
        self.assertEqual(
            [job.context],
            [j.context for j in OCIRegistryUploadJob.iterReady()],
        )

    def test_success(self):
        job = self.makeJob(tags=["stable"])
        client = RecordingClient()
        (ran,) = run_registry_upload_jobs(client=client)
        self.assertEqual(job.context, ran.context)
        self.assertEqual(JobStatus.COMPLETED, job.job.status)
        self.assertEqual(1, job.job.attempt_count)
        self.assertTrue(job.build_uploaded)
        self.assertEqual(
            ["upload", "uploadManifestList"], [c[0] for c in client.calls]
        )
        self.assertEqual(["stable"], client.calls[1][2])
        (rule,) = job.build.recipe.push_rules
        self.assertEqual(
            {str(rule.id): {"stable": "sha256:" + "b" * 64}},
            job.manifest_list_digests,
        )
        self.assertEqual("stable", job.registry_results[str(rule.id)]["tag"])
        self.assertEqual(
            OCIRecipeBuildRegistryUploadStatus.UPLOADED,
            job.build.registry_upload_status,
        )

    def test_refusal_fails_at_once(self):
        job = self.makeJob()
        errors = [{"code": "DENIED", "message": "requested access denied"}]
        client = RecordingClient(
            upload_error=ManifestUploadFailed("Denied", errors)
        )
        job.runAndRecord(client=client)
        self.assertEqual(JobStatus.FAILED, job.job.status)
        self.assertEqual("Denied", job.error_summary)
        self.assertEqual(errors, job.errors)
        self.assertEqual(errors, job.build.registry_upload_errors)
        self.assertFalse(job.build_uploaded)

    def test_transient_failure_retried_later(self):
        job = self.makeJob()
        client = RecordingClient(
            upload_error=OCIRegistryError("Unreachable", transient=True)
        )
        job.runAndRecord(client=client)
        self.assertEqual(JobStatus.WAITING, job.job.status)
        self.assertTrue(job.job.scheduled_start > utc_now())
        self.assertEqual("Unreachable", job.error_summary)
        self.assertEqual([], run_registry_upload_jobs(client=client))
        # After max_retries attempts it fails for good.
        for _ in range(OCIRegistryUploadJob.max_retries - 1):
            job.job.scheduled_start = None
            transaction.commit()
            job.runAndRecord(client=client)
        self.assertEqual(JobStatus.FAILED, job.job.status)
        self.assertEqual(
            OCIRegistryUploadJob.max_retries, job.job.attempt_count
        )

    def test_manifest_list_retry_does_not_push_again(self):
        job = self.makeJob()
        client = RecordingClient(
            list_error=ManifestListUploadFailed("Busy", transient=True)
        )
        job.runAndRecord(client=client)
        self.assertEqual(JobStatus.WAITING, job.job.status)
        # The blobs and manifests were pushed and that was committed.
        self.assertTrue(job.build_uploaded)
        job.job.scheduled_start = None
        transaction.commit()
        job.runAndRecord(client=client)
        self.assertEqual(JobStatus.COMPLETED, job.job.status)
        self.assertEqual(
            ["upload", "uploadManifestList", "uploadManifestList"],
            [c[0] for c in client.calls],
        )

    def test_superseded_build_not_pushed(self):
        job = self.makeJob()
        job.build.updateStatus(
            BuildStatus.SUPERSEDED, force_invalid_transition=True
        )
        transaction.commit()
        client = RecordingClient()
        job.runAndRecord(client=client)
        self.assertEqual(JobStatus.COMPLETED, job.job.status)
        self.assertEqual([], client.calls)

    def makeNewerBuild(self, old):
        newer = self.factory.makeOCIRecipeBuild(
            recipe=old.recipe,
            distro_arch_series=old.distro_arch_series,
            status=BuildStatus.FULLYBUILT,
            date_created=old.date_created + timedelta(minutes=1),
        )
        self.factory.makeOCILayoutFiles(build=newer)
        return newer

    def push(self, build):
        """Give ``build`` a completed push."""
        job = OCIRegistryUploadJob.create(build)
        job.job.start()
        job.job.complete()
        transaction.commit()
        return job

    def test_client_marks_older_builds_superseded(self):
        # Superseded means a newer build was *pushed* to the tags.
        job = self.makeJob()
        old = job.build
        newer = self.makeNewerBuild(old)
        client = OCIRegistryClient()
        self.assertFalse(client.updateSupersededBuilds(old))
        self.assertEqual(BuildStatus.FULLYBUILT, old.status)
        self.push(newer)
        self.assertTrue(client.updateSupersededBuilds(old))
        self.assertEqual(BuildStatus.SUPERSEDED, old.status)
        self.assertEqual({}, client.uploadManifestList(None, [old]))

    def test_waiting_push_survives_a_newer_build_that_is_not_pushed(self):
        # lp-oci run of another image (no --registry) builds a newer
        # build of the recipe: the waiting push still happens.
        job = self.makeJob()
        self.makeNewerBuild(job.build)
        transaction.commit()
        client = RecordingClient()
        # The real client's decision, recorded pushes.
        client.updateSupersededBuilds = (
            OCIRegistryClient.updateSupersededBuilds
        )
        job.runAndRecord(client=client)
        self.assertEqual(JobStatus.COMPLETED, job.job.status)
        self.assertEqual(BuildStatus.FULLYBUILT, job.build.status)
        self.assertEqual(
            [("upload", job.build)], [c[:2] for c in client.calls[:1]]
        )
        self.assertIsNone(job.error_summary)

    def test_waiting_push_superseded_by_a_pushed_newer_build(self):
        job = self.makeJob()
        self.push(self.makeNewerBuild(job.build))
        job.runAndRecord(client=OCIRegistryClient())
        self.assertEqual(JobStatus.COMPLETED, job.job.status)
        self.assertEqual(BuildStatus.SUPERSEDED, job.build.status)
        self.assertIn("superseded", job.error_summary)

    def test_no_push_rule_left_fails(self):
        # Completing would claim a push that never happened.
        job = self.makeJob()
        for rule in job.build.recipe.push_rules:
            rule.destroySelf()
        transaction.commit()
        client = RecordingClient()
        job.runAndRecord(client=client)
        self.assertEqual(JobStatus.FAILED, job.job.status)
        self.assertIn("no push rule", job.error_summary)
        self.assertEqual([], client.calls)

    def test_no_tag_set_fails(self):
        job = self.makeJob()
        client = RecordingClient()
        client.uploadManifestList = lambda *args, **kwargs: {}
        job.runAndRecord(client=client)
        self.assertEqual(JobStatus.FAILED, job.job.status)
        self.assertIn("No tag was set", job.error_summary)

    def test_internal_error_fails_and_propagates(self):
        job = self.makeJob()
        client = RecordingClient(upload_error=ZeroDivisionError())
        self.assertRaises(ZeroDivisionError, job.runAndRecord, client=client)
        self.assertEqual(JobStatus.FAILED, job.job.status)
        self.assertEqual("Internal error", job.error_summary)

    def otherConnectionCanLock(self, recipe):
        """Whether another connection could take ``recipe``'s lock now."""
        store = IStore(OCIRecipeBuildJob)
        if backend_name(store) == "postgres":
            return other_connection_can_lock(
                LockType.REGISTRY_UPLOAD, recipe.id
            )
        # SQLite: one lock, the database's write lock.
        other = sqlite3.connect(
            SQLiteDatabaseLayer.uri[len("sqlite:") :],
            timeout=0,
            isolation_level=None,
        )
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError as e:
            self.assertIn("database is locked", str(e))
            return False
        finally:
            other.close()

    def test_lock(self):
        # The recipe's lock holds off another connection until the
        # transaction ends.
        job = self.makeJob()
        transaction.commit()
        self.assertTrue(self.otherConnectionCanLock(job.build.recipe))
        job._lockRecipe()
        self.assertFalse(self.otherConnectionCanLock(job.build.recipe))
        transaction.commit()
        self.assertTrue(self.otherConnectionCanLock(job.build.recipe))


class TestOCIRegistryUploadJobSQLite(TestOCIRegistryUploadJob):
    layer = SQLiteLaunchpadZopelessLayer


class TestRepositoryLock(TestCaseWithFactory):
    """Recipes pushing to one repository update its tag one at a time."""

    layer = LaunchpadZopelessLayer

    def tryLock(self, key):
        """Whether another connection can take the repository lock."""
        return other_connection_can_lock(LockType.REGISTRY_REPOSITORY, key)

    def test_tag_update_holds_the_repository(self):
        # Before: each job held only its recipe's lock, and two recipes
        # pushing to one repository merged into its tag at once.
        build = self.factory.makeOCIRecipeBuild(status=BuildStatus.FULLYBUILT)
        credentials = self.factory.makeOCIRegistryCredentials(
            url="https://registry.example"
        )
        self.factory.makeOCIPushRule(
            recipe=build.recipe,
            registry_credentials=credentials,
            image_name="shared/image",
        )
        self.factory.makeOCILayoutFiles(build=build)
        job = build.scheduleRegistryUpload()
        transaction.commit()
        held = []
        test = self

        class CheckingClient(RecordingClient):
            def uploadManifestList(self, *args, **kwargs):
                # Another recipe's job, pushing there (under another
                # spelling of the registry's URL), and one pushing
                # elsewhere.
                held.append(
                    (
                        test.tryLock(
                            repository_lock_key(
                                "https://Registry.example/", "shared/image"
                            )
                        ),
                        test.tryLock(
                            repository_lock_key(
                                "https://registry.example", "other/image"
                            )
                        ),
                    )
                )
                return super().uploadManifestList(*args, **kwargs)

        job.runAndRecord(client=CheckingClient())
        self.assertEqual(JobStatus.COMPLETED, job.job.status)
        self.assertEqual([(False, True)], held)
        # Released at commit.
        self.assertTrue(
            self.tryLock(
                repository_lock_key("https://registry.example", "shared/image")
            )
        )


class TestAdvisoryLock(TestCaseWithFactory):
    layer = DatabaseLayer

    def test_serialises_between_connections(self):
        store = IStore(OCIRecipeBuildJob)
        take_xact_lock(store, LockType.REGISTRY_UPLOAD, 42)

        def try_lock(key):
            return other_connection_can_lock(LockType.REGISTRY_UPLOAD, key)

        self.assertFalse(try_lock(42))
        # Other recipes are not held up.
        self.assertTrue(try_lock(43))
        # The lock ends with the transaction.
        transaction.commit()
        self.assertTrue(try_lock(42))
