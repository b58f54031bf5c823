# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The registry client against registries that misbehave.

Real registries on loopback (`RegistryLayer`) behind the fault proxy,
which rewrites what a real registry cannot be made to send.
"""

__all__ = []

import os
import threading
import time
import tracemalloc
from datetime import datetime, timezone

import requests
from fixtures import MonkeyPatch
from testtools.matchers import GreaterThan, LessThan, MatchesAll

from lp.oci.interfaces.ociregistryclient import (
    BlobUploadFailed,
    OCIRegistryAuthenticationError,
    OCIRegistryError,
)
from lp.oci.model.ociregistryhttp import (
    BearerTokenRegistryClient,
    RegistryHTTPClient,
    RetryPolicy,
)
from lp.oci.tests.test_ociregistryclient import RegistryTestMixin
from lp.services.webservice.testing import free_port
from lp.testing import TestCaseWithFactory
from lp.testing.layers import RegistryLayer
from ocitypes.descriptor import MediaType
from ocitypes.digest import Digest


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


class TestBoundedAnswers(RegistryTestMixin, TestCaseWithFactory):
    """Every body the client reads is bounded; so are its loops."""

    # Enough to show the old client reading it all, little enough for
    # the machine running the tests.
    ENDLESS = 64 << 20

    def pushUnderMemoryWatch(self, build):
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        started = time.monotonic()
        job = self.pushBuild(build, client=self.makeClient(parallelism=1))
        _, peak = tracemalloc.get_traced_memory()
        return job, peak, time.monotonic() - started

    def test_endless_bodies(self):
        # Before: each body was read whole, however long (an endless one
        # grew the process by over 500 MB in seconds).
        for method, path, status in (
            ("GET", "^/v2/$", 200),
            ("PUT", "/manifests/sha256:", 500),
            ("GET", "/manifests/edge$", 200),
            ("POST", "/blobs/uploads/", 500),
        ):
            with self.subTest(method=method, path=path):
                proxy = self.makeProxy()
                build, files = self.makeBuild(url=proxy.url)
                proxy.addRule(
                    "endless",
                    method=method,
                    path=path,
                    status=status,
                    times=None,
                    limit=self.ENDLESS,
                    headers={"Content-Type": "application/json"},
                )
                job, peak, seconds = self.pushUnderMemoryWatch(build)
                self.assertIn("answered with a body over", job.error_summary)
                self.assertNotIn("\n", job.error_summary)
                self.assertLess(peak, 32 << 20)

    def test_redirect_body_not_read(self):
        # Before: requests read a redirect's whole body, however long,
        # before following it.
        proxy = self.makeProxy()
        build, files = self.makeBuild(url=proxy.url)
        proxy.addRule(
            "endless",
            method="GET",
            path="^/v2/$",
            status=307,
            limit=self.ENDLESS,
            headers={"Location": "/v2/"},
        )
        job, peak, seconds = self.pushUnderMemoryWatch(build)
        self.assertIsNone(job.error_summary)
        self.assertLess(peak, 32 << 20)

    def test_too_many_redirects(self):
        proxy = self.makeProxy()
        build, files = self.makeBuild(url=proxy.url)
        proxy.addRule(
            "status",
            method="GET",
            path="^/v2/$",
            status=302,
            times=None,
            headers={"Location": "/v2/"},
        )
        job = self.pushBuild(build, client=self.makeClient(parallelism=1))
        self.assertIn("redirected more than", job.error_summary)
        self.assertEqual("Failed", job.job.status.title)

    def test_endless_token(self):
        registry = RegistryLayer.token
        endless = self.makeProxy(registry)
        endless.addRule(
            "endless", path="", times=None, limit=self.ENDLESS, status=200
        )
        proxy = self.makeProxy(registry)
        proxy.addRule(
            "header",
            path="",
            header="WWW-Authenticate",
            value='Bearer realm="%s/token",service="%s"'
            % (endless.url, RegistryLayer.token_server.service),
            times=None,
        )
        user, password = next(iter(RegistryLayer.basic_users.items()))
        build, files = self.makeBuild(
            url=proxy.url,
            credentials={"username": user, "password": password},
        )
        job, peak, seconds = self.pushUnderMemoryWatch(build)
        self.assertIn("answered with a body over", job.error_summary)
        self.assertLess(peak, 32 << 20)

    def test_range_that_never_advances(self):
        # Before: tens of thousands of PATCHes, for ever.  After 100 the
        # registry itself answers (416: it holds none of it), which
        # ends the test, failing, if the client has not given up.
        proxy = self.makeProxy()
        big = os.urandom(40_000)
        build, files = self.makeBuild(url=proxy.url, layer_contents=[big])
        digest = Digest.of_bytes(big)
        proxy.addRule("drop", method="PUT", path=digest.hex, after_bytes=1)
        proxy.addRule(
            "status",
            method="PATCH",
            status=202,
            headers={"Range": "0-0"},
            times=100,
        )
        client = self.makeClient(parallelism=1, chunk_size=16_384)
        e = self.assertRaises(BlobUploadFailed, client.upload, build)
        self.assertIn("made no progress", str(e))
        self.assertTrue(e.transient)
        patches = [r for r in proxy.requests if r[0] == "PATCH"]
        attempts = self.retry_policy.attempts
        self.assertLessEqual(len(patches), attempts * (attempts + 1))

    def test_retry_after_is_capped(self):
        # Before: waited min(Retry-After, 120 s) on each of 5 attempts;
        # a registry saying 86400 held the push for ten minutes.
        proxy = self.makeProxy()
        build, files = self.makeBuild(url=proxy.url)
        proxy.addRule(
            "status",
            method="POST",
            path="/blobs/uploads/",
            status=429,
            headers={"Retry-After": "86400"},
            times=None,
        )
        job = self.pushBuild(build, client=self.makeClient(parallelism=1))
        self.assertEqual([], self.sleep.calls)
        self.assertEqual("Waiting", job.job.status.title)
        # Queued again for when the registry said, within a day.
        delay = job.job.scheduled_start - datetime.now(timezone.utc)
        self.assertThat(
            delay.total_seconds(),
            MatchesAll(GreaterThan(86000), LessThan(86401)),
        )
        # What is not too long is waited for, up to the configured cap.
        self.assertEqual(30.0, RetryPolicy().max_retry_after)
        proxy.rules.clear()
        proxy.addRule(
            "status",
            method="POST",
            path="/blobs/uploads/",
            status=429,
            headers={"Retry-After": "50"},
        )
        self.retry_policy.max_retry_after = 60
        (result,) = self.makeClient(parallelism=1).upload(build).values()
        self.assertEqual([50.0], self.sleep.calls)

    def test_monolithic_put_too_large_falls_back_to_chunks(self):
        proxy = self.makeProxy()
        big = os.urandom(40_000)
        build, files = self.makeBuild(url=proxy.url, layer_contents=[big])
        digest = Digest.of_bytes(big)
        proxy.addRule("status", method="PUT", path=digest.hex, status=413)
        client = self.makeClient(parallelism=1, chunk_size=16_384)
        job = self.pushBuild(build, client=client)
        self.assertIsNone(job.error_summary)
        patches = [
            headers["Content-Range"]
            for method, path, headers in proxy.requests
            if method == "PATCH"
        ]
        self.assertEqual(["0-16383", "16384-32767", "32768-39999"], patches)
        self.assertReadBack(build, files.manifest.layer_file_digest)


class TestConcurrentTagUpdates(RegistryTestMixin, TestCaseWithFactory):
    """Two pushers of different platforms to one tag at once."""

    TRIALS = 20

    def makePushers(self, client, image_name=None):
        """An amd64 and an arm64 build pushed to one repository."""
        amd64, amd64_files = self.makeBuild(image_name=image_name)
        (rule,) = amd64.recipe.push_rules
        arm64, arm64_files = self.makeBuild(
            arch="arm64", image_name=rule.image_name
        )
        pushers = []
        for build in (amd64, arm64):
            (result,) = client.upload(build).values()
            (build_rule,) = build.recipe.push_rules
            http_client = client._getHTTPClient(build_rule)
            self.addCleanup(http_client.close)
            pushers.append((http_client, result.manifests))
        digests = {
            str(amd64_files.manifest.layer_file_digest),
            str(arm64_files.manifest.layer_file_digest),
        }
        return rule.image_name, pushers, digests

    def pushTogether(self, client, tag, pushers):
        barrier = threading.Barrier(len(pushers))
        errors = []

        def push(http_client, children):
            try:
                barrier.wait()
                client._uploadManifestListToTag(http_client, tag, children)
            except Exception as e:
                errors.append(e)

        threads = [
            threading.Thread(target=push, args=pusher) for pusher in pushers
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual([], errors)

    def tagDigests(self, image_name, tag):
        response = requests.get(
            "%s/v2/%s/manifests/%s" % (self.registry.url, image_name, tag),
            headers={"Accept": MediaType.OCI_INDEX},
        )
        self.assertEqual(200, response.status_code)
        return {m["digest"] for m in response.json()["manifests"]}

    def test_both_platforms_end_in_the_tag(self):
        # Before: about one trial in six lost an entry, both pushers
        # having written the tag without error.
        client = self.makeClient(parallelism=1)
        image_name, pushers, expected = self.makePushers(client)
        lost = []
        for trial in range(self.TRIALS):
            tag = "trial%d" % trial
            self.pushTogether(client, tag, pushers)
            found = self.tagDigests(image_name, tag)
            if found != expected:
                lost.append((tag, sorted(expected - found)))
        self.assertEqual([], lost)

    def test_both_platforms_replace_older_builds_in_the_tag(self):
        # The usual case: the tag already lists an older build of each
        # platform.  A pusher that writes back the older entry of the
        # other's platform must not pass for a later build: before,
        # about one trial in six kept an older build's entry.
        client = self.makeClient(parallelism=1)
        image_name, old_pushers, old = self.makePushers(client)
        _, pushers, expected = self.makePushers(client, image_name)
        self.assertEqual(set(), old & expected)
        lost = []
        for trial in range(self.TRIALS):
            tag = "old%d" % trial
            for http_client, children in old_pushers:
                client._uploadManifestListToTag(http_client, tag, children)
            self.assertEqual(old, self.tagDigests(image_name, tag))
            self.pushTogether(client, tag, pushers)
            found = self.tagDigests(image_name, tag)
            if found != expected:
                lost.append((tag, sorted(expected - found)))
        self.assertEqual([], lost)


_HTTP = "lp.oci.model.ociregistryhttp"


class TestProbeClientClosed(RegistryTestMixin, TestCaseWithFactory):
    """The client that probed ``/v2/`` does not outlive `getInstance`."""

    def getInstanceRecorded(self, registry, credentials=None):
        build, _ = self.makeBuild(url=registry.url, credentials=credentials)
        (rule,) = build.recipe.push_rules
        created, closed = [], []
        original_init = RegistryHTTPClient.__init__
        original_close = RegistryHTTPClient.close

        def init(client, *args, **kwargs):
            created.append(client)
            original_init(client, *args, **kwargs)

        def close(client):
            closed.append(client)
            original_close(client)

        self.useFixture(
            MonkeyPatch(f"{_HTTP}.RegistryHTTPClient.__init__", init)
        )
        self.useFixture(
            MonkeyPatch(f"{_HTTP}.RegistryHTTPClient.close", close)
        )
        try:
            client = RegistryHTTPClient.getInstance(
                rule, retry_policy=self.retry_policy
            )
        except Exception as e:
            client = e
        else:
            self.addCleanup(original_close, client)
        left_open = [c for c in created if c is not client and c not in closed]
        return client, left_open

    def test_token_registry(self):
        # Before: the anonymous probe's sessions stayed open beside the
        # bearer client returned.
        user, password = next(iter(RegistryLayer.basic_users.items()))
        client, left_open = self.getInstanceRecorded(
            RegistryLayer.token, {"username": user, "password": password}
        )
        self.assertIsInstance(client, BearerTokenRegistryClient)
        self.assertEqual([], left_open)

    def test_refused_credentials(self):
        client, left_open = self.getInstanceRecorded(
            RegistryLayer.basic, {"username": "nobody", "password": "wrong"}
        )
        self.assertIsInstance(client, OCIRegistryAuthenticationError)
        self.assertEqual([], left_open)

    def test_unreachable(self):
        client, left_open = self.getInstanceRecorded(
            type("Closed", (), {"url": f"http://127.0.0.1:{free_port()}"})
        )
        self.assertIsInstance(client, OCIRegistryError)
        self.assertEqual([], left_open)
