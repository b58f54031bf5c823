# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The registry client against registries that misbehave.

Real registries on loopback (`RegistryLayer`) behind the fault proxy,
which rewrites what a real registry cannot be made to send.
"""

__all__ = []

from lp.oci.interfaces.ociregistryclient import BlobUploadFailed
from lp.oci.tests.test_ociregistryclient import RegistryTestMixin
from lp.testing import TestCaseWithFactory
from lp.testing.layers import RegistryLayer


class TestCredentialsOnlyToTheRegistry(RegistryTestMixin, TestCaseWithFactory):
    """Credentials go to the host that asked for them, nowhere else."""

    def pushWithUploadsElsewhere(self, registry):
        """Push to ``registry``, whose upload sessions are on another
        host:port (a second proxy to the same registry); return that
        proxy's requests and the job."""
        front = self.makeProxy(registry)
        elsewhere = self.makeProxy(registry)
        front.addRule(
            "location",
            method="POST",
            path="/blobs/uploads/",
            times=None,
            to=elsewhere.host,
        )
        user, password = next(iter(RegistryLayer.basic_users.items()))
        build, files = self.makeBuild(
            url=front.url,
            credentials={"username": user, "password": password},
            layer_contents=[b"layer one", b"layer two"],
        )
        job = self.pushBuild(build, client=self.makeClient(parallelism=1))
        return elsewhere.requests, job

    def assertNoCredentials(self, requests_seen):
        self.assertNotEqual([], requests_seen)
        for method, path, headers in requests_seen:
            self.assertNotIn(
                "authorization",
                {name.lower() for name in headers},
                f"{method} {path}",
            )

    def test_basic_credentials_not_sent_to_another_host(self):
        # Before: the upload session's PUT carried the basic
        # credentials to whatever host the Location named.
        requests_seen, job = self.pushWithUploadsElsewhere(RegistryLayer.basic)
        self.assertNoCredentials(requests_seen)
        # The registry wants them there: the push fails, in one line.
        self.assertEqual("Failed", job.job.status.title)
        self.assertNotIn("\n", job.error_summary)
        self.assertNotIn(
            RegistryLayer.basic_users["pusher"], job.error_summary
        )

    def test_bearer_token_not_sent_to_another_host(self):
        requests_seen, job = self.pushWithUploadsElsewhere(RegistryLayer.token)
        self.assertNoCredentials(requests_seen)
        self.assertEqual("Failed", job.job.status.title)

    def test_same_origin_locations_still_authenticated(self):
        # Distribution's own Locations (absolute, on its origin) work.
        for registry in (RegistryLayer.basic, RegistryLayer.token):
            front = self.makeProxy(registry)
            user, password = next(iter(RegistryLayer.basic_users.items()))
            build, files = self.makeBuild(
                url=front.url,
                credentials={"username": user, "password": password},
            )
            job = self.pushBuild(build)
            self.assertIsNone(job.error_summary)


class TestHeadDigestChecked(RegistryTestMixin, TestCaseWithFactory):
    def test_head_with_another_digest_is_refused(self):
        # A registry that says it has a blob, under another digest, does
        # not have ours: the push fails rather than skip the blob.
        proxy = self.makeProxy()
        build, files = self.makeBuild(url=proxy.url)
        # The first push stores the blobs, so that HEAD answers 200.
        job = self.pushBuild(build)
        self.assertIsNone(job.error_summary)
        proxy.addRule(
            "header",
            method="HEAD",
            path="/blobs/sha256:",
            header="Docker-Content-Digest",
            value="sha256:" + "0" * 64,
            times=None,
        )
        e = self.assertRaises(
            BlobUploadFailed, self.makeClient(parallelism=1).upload, build
        )
        self.assertIn("has digest sha256:0000", str(e))
