# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `BuilderWorker` against a real builder on loopback."""

__all__ = []

import hashlib
import logging
import os
import xmlrpc.client

from fixtures import TempDir
from testtools import TestCase
from testtools.matchers import (
    ContainsDict,
    Equals,
    GreaterThan,
    IsInstance,
    MatchesStructure,
    Not,
)
from testtools.twistedsupport import (
    AsynchronousDeferredRunTest,
    assert_fails_with,
)
from twisted.internet import defer
from twisted.internet.threads import deferToThread

from lp.buildmaster.downloader import CHUNK_SIZE
from lp.buildmaster.enums import WorkerBuilderStatus, WorkerBuildStatus
from lp.buildmaster.interactor import (
    WORKER_LOG_FILENAME,
    BuilderConnectionError,
    BuilderFileCorrupt,
    BuilderFileIncomplete,
    BuilderFileNotFound,
    BuilderServerError,
    BuilderTimeout,
    BuilderWorker,
    CannotFetchFile,
    DownloadResult,
    RetryPolicy,
)
from lp.buildmaster.tests.mock_workers import BuilderWorkerTestMixin
from lpbuildd.testing.faultproxy import FaultProxy, FaultRule


def sha1_hex(content):
    return hashlib.sha1(content).hexdigest()


def sha256_hex(content):
    return hashlib.sha256(content).hexdigest()


class TestRetryPolicy(TestCase):
    def test_delays(self):
        policy = RetryPolicy(
            attempts=5, initial_delay=1, factor=3, max_delay=10
        )
        self.assertEqual([1, 3, 9, 10], policy.delays())

    def test_single_attempt(self):
        self.assertEqual([], RetryPolicy(attempts=1).delays())
        self.assertRaises(ValueError, RetryPolicy, attempts=0)


class TestBuilderWorkerOffline(TestCase):
    run_tests_with = AsynchronousDeferredRunTest.make_factory(timeout=30)

    def makeWorker(self, url="http://127.0.0.1:8221/"):
        # No process pool is started until something is downloaded.
        return BuilderWorker.makeBuilderWorker(url, None, 5)

    def test_getURL(self):
        self.assertEqual(
            "http://127.0.0.1:8221/filecache/" + "a" * 40,
            self.makeWorker().getURL("a" * 40),
        )

    def test_getFile_rejects_malformed_sha1(self):
        worker = self.makeWorker()
        return assert_fails_with(worker.getFile("../x", "/tmp/x"), ValueError)

    def test_getFile_rejects_file_objects(self):
        worker = self.makeWorker()
        return assert_fails_with(worker.getFile("a" * 40, object()), TypeError)

    def test_getFiles_rejects_malformed_sha1(self):
        worker = self.makeWorker()
        return assert_fails_with(
            worker.getFiles([("buildlog", "/tmp/x")]), ValueError
        )

    def test_connection_refused(self):
        from twisted.internet import reactor

        from lp.buildmaster.tests.mock_workers import LoopbackBuilder

        # Find a port nobody listens on.
        loopback = LoopbackBuilder(self.useFixture(TempDir()).path, reactor)
        url = loopback.start()
        d = loopback.stop()
        d.addCallback(lambda _: self.makeWorker(url).status())
        return assert_fails_with(d, BuilderConnectionError)


class BuilderWorkerTestCase(BuilderWorkerTestMixin, TestCase):
    def setUp(self):
        super().setUp()
        self.loopback = self.useLoopbackBuilder()
        self.builder = self.loopback.builder
        self.download_dir = self.useFixture(TempDir()).path
        self.waits = []

    def makeWorker(self, url=None, **kwargs):
        worker = super().makeWorker(url or self.loopback.url, **kwargs)
        real_wait = worker._wait

        def record_wait(delay):
            self.waits.append(delay)
            return real_wait(delay)

        worker._wait = record_wait
        return worker

    def makeProxy(self):
        proxy = FaultProxy(self.loopback.url)
        proxy.start()
        # Stopping joins the proxy's thread, which may be talking to the
        # builder on this reactor: do it in a thread.
        self.addCleanup(deferToThread, proxy.stop)
        return proxy

    def fileResult(self, content, name=None):
        """File `content` as a waiting file on the builder."""
        return self.loopback.fileResult(content, name=name)

    def target(self, name="out"):
        return os.path.join(self.download_dir, name)

    def assertDownloadDirEmpty(self):
        self.assertEqual([], os.listdir(self.download_dir))

    def assertFileContent(self, content, path):
        with open(path, "rb") as f:
            self.assertEqual(sha1_hex(content), sha1_hex(f.read()))


class TestBuilderWorkerRPC(BuilderWorkerTestCase):
    @defer.inlineCallbacks
    def test_status_round_trip(self):
        worker = self.makeWorker()
        status = yield worker.status()
        self.assertEqual({"builder_status": WorkerBuilderStatus.IDLE}, status)
        self.builder.startBuild("42-1")
        self.builder.log("Building the image\n")
        status = yield worker.status()
        self.assertEqual(
            WorkerBuilderStatus.BUILDING, status["builder_status"]
        )
        self.assertThat(status["logtail"], IsInstance(xmlrpc.client.Binary))
        self.assertEqual(b"Building the image\n", status["logtail"].data)
        sha1 = self.fileResult(b"{}", name="manifest.json")
        self.builder.buildComplete()
        status = yield worker.status()
        self.assertThat(
            status,
            ContainsDict(
                {
                    "builder_status": Equals(WorkerBuilderStatus.WAITING),
                    "build_status": Equals(WorkerBuildStatus.OK),
                    "build_id": Equals("42-1"),
                    "filemap": Equals({"manifest.json": sha1}),
                }
            ),
        )
        cleaned = yield worker.clean()
        self.assertEqual(WorkerBuilderStatus.IDLE, cleaned)
        status = yield worker.status()
        self.assertEqual(WorkerBuilderStatus.IDLE, status["builder_status"])

    @defer.inlineCallbacks
    def test_echo_and_info(self):
        worker = self.makeWorker()
        echoed = yield worker.echo("a", 1, None)
        self.assertEqual(["a", 1, None], echoed)
        info = yield worker.info()
        self.assertEqual(["1.0", "amd64", []], info)

    def test_fault_is_raised(self):
        return assert_fails_with(
            self.makeWorker().clean(), xmlrpc.client.Fault
        )

    def test_rpc_timeout(self):
        proxy = self.makeProxy()
        proxy.delay(3, path_prefix="/rpc")
        worker = self.makeWorker(proxy.url, timeout=0.2)
        return assert_fails_with(worker.status(), BuilderTimeout)

    @defer.inlineCallbacks
    def test_rpc_server_error(self):
        proxy = self.makeProxy()
        proxy.addRule(FaultRule("status", status=502, path_prefix="/rpc"))
        worker = self.makeWorker(proxy.url)
        e = yield assert_fails_with(worker.status(), BuilderServerError)
        self.assertEqual(502, e.status)
        self.assertNotIn("\n", str(e))


class TestBuilderWorkerGetFile(BuilderWorkerTestCase):
    @defer.inlineCallbacks
    def test_multi_megabyte_file(self):
        content = os.urandom(3 * CHUNK_SIZE + 5)
        sha1 = self.fileResult(content)
        result = yield self.makeWorker().getFile(sha1, self.target())
        self.assertEqual(
            DownloadResult(
                self.target(), sha1, sha256_hex(content), len(content)
            ),
            result,
        )
        self.assertFileContent(content, self.target())
        self.assertEqual(["out"], os.listdir(self.download_dir))
        self.assertEqual(0o644, os.stat(self.target()).st_mode & 0o777)
        self.assertEqual([], self.waits)

    @defer.inlineCallbacks
    def test_build_log_is_not_checked(self):
        # launchpad-buildd serves its log as "buildlog"; it has no SHA-1
        # to check.  A builder of this tree does not serve that name.
        proxy = self.makeProxy()
        worker = self.makeWorker(proxy.url)
        yield assert_fails_with(
            worker.getFile(WORKER_LOG_FILENAME, self.target()),
            BuilderFileNotFound,
        )
        self.assertEqual(["/filecache/buildlog"], proxy.requests)

    @defer.inlineCallbacks
    def test_not_found_fails_fast(self):
        proxy = self.makeProxy()
        worker = self.makeWorker(proxy.url)
        e = yield assert_fails_with(
            worker.getFile("0" * 40, self.target()), BuilderFileNotFound
        )
        self.assertIn("0" * 40, str(e))
        self.assertEqual("0" * 40, e.sha1)
        self.assertEqual([], self.waits)
        self.assertEqual(["/filecache/" + "0" * 40], proxy.requests)
        self.assertDownloadDirEmpty()

    @defer.inlineCallbacks
    def test_corrupt_cache_file_retried_then_fails_cleanly(self):
        content = os.urandom(100000)
        sha1 = self.fileResult(content)
        # Corrupt the cached copy in place (same length, wrong bytes).
        with open(self.builder.cachePath(sha1), "r+b") as f:
            f.write(b"X" * 10)
        proxy = self.makeProxy()
        worker = self.makeWorker(proxy.url)
        e = yield assert_fails_with(
            worker.getFile(sha1, self.target()), BuilderFileCorrupt
        )
        self.assertEqual(sha1, e.sha1)
        self.assertEqual(3, e.attempts)
        self.assertEqual(3, len(proxy.requests))
        self.assertEqual([0.01, 0.02], self.waits)
        self.assertDownloadDirEmpty()

    @defer.inlineCallbacks
    def test_connection_dropped_mid_file_recovered(self):
        content = os.urandom(3 * 1024 * 1024)
        sha1 = self.fileResult(content)
        proxy = self.makeProxy()
        rule = proxy.dropAfter(1024 * 1024, sha1=sha1, times=1)
        logger = logging.getLogger(self.id())
        with self.assertLogs(logger, logging.WARNING) as logs:
            yield self.makeWorker(proxy.url).getFile(
                sha1, self.target(), logger=logger
            )
        self.assertEqual(1, rule.applied)
        self.assertEqual(2, len(proxy.requests))
        self.assertEqual(1, len(self.waits))
        self.assertIn("Attempt 1 to fetch", logs.output[0])
        self.assertFileContent(content, self.target())
        self.assertEqual(["out"], os.listdir(self.download_dir))

    @defer.inlineCallbacks
    def test_connection_reset_mid_file_recovered(self):
        content = os.urandom(500000)
        sha1 = self.fileResult(content)
        proxy = self.makeProxy()
        proxy.dropAfter(1000, sha1=sha1, times=1, reset=True)
        yield self.makeWorker(proxy.url).getFile(sha1, self.target())
        self.assertFileContent(content, self.target())

    @defer.inlineCallbacks
    def test_connection_always_dropped_fails_cleanly(self):
        sha1 = self.fileResult(os.urandom(500000))
        proxy = self.makeProxy()
        proxy.dropAfter(1000, sha1=sha1, times=None)
        worker = self.makeWorker(proxy.url)
        e = yield assert_fails_with(
            worker.getFile(sha1, self.target()), BuilderFileIncomplete
        )
        self.assertIsInstance(e, CannotFetchFile)
        self.assertEqual(3, len(proxy.requests))
        self.assertDownloadDirEmpty()

    @defer.inlineCallbacks
    def test_timeout_before_response_retried(self):
        sha1 = self.fileResult(b"slow")
        proxy = self.makeProxy()
        rule = proxy.delay(3, sha1=sha1, times=1)
        worker = self.makeWorker(proxy.url, timeout=0.5)
        yield worker.getFile(sha1, self.target())
        self.assertEqual(1, rule.applied)
        self.assertEqual(1, len(self.waits))
        self.assertFileContent(b"slow", self.target())

    @defer.inlineCallbacks
    def test_stall_mid_body_retried(self):
        content = os.urandom(300000)
        sha1 = self.fileResult(content)
        proxy = self.makeProxy()
        proxy.stallAfter(1000, 3, sha1=sha1, times=1)
        worker = self.makeWorker(proxy.url, timeout=0.5)
        yield worker.getFile(sha1, self.target())
        self.assertEqual(2, len(proxy.requests))
        self.assertEqual(["out"], os.listdir(self.download_dir))
        self.assertFileContent(content, self.target())

    @defer.inlineCallbacks
    def test_timeouts_exhaust_retries(self):
        sha1 = self.fileResult(b"slow")
        proxy = self.makeProxy()
        proxy.delay(3, sha1=sha1, times=None)
        worker = self.makeWorker(
            proxy.url,
            timeout=0.2,
            retry_policy=RetryPolicy(attempts=2, initial_delay=0),
        )
        yield assert_fails_with(
            worker.getFile(sha1, self.target()), BuilderTimeout
        )
        self.assertDownloadDirEmpty()

    @defer.inlineCallbacks
    def test_server_errors_retried(self):
        sha1 = self.fileResult(b"flaky")
        proxy = self.makeProxy()
        proxy.failWith(503, sha1=sha1, times=2)
        result = yield self.makeWorker(proxy.url).getFile(sha1, self.target())
        self.assertEqual(5, result.size)
        self.assertFileContent(b"flaky", self.target())
        self.assertEqual(2, len(self.waits))

    @defer.inlineCallbacks
    def test_server_errors_exhaust_retries(self):
        sha1 = self.fileResult(b"flaky")
        proxy = self.makeProxy()
        proxy.failWith(500, sha1=sha1, times=None)
        worker = self.makeWorker(proxy.url)
        e = yield assert_fails_with(
            worker.getFile(sha1, self.target()), BuilderServerError
        )
        self.assertEqual(500, e.status)
        self.assertDownloadDirEmpty()

    @defer.inlineCallbacks
    def test_bad_content_length_fails_cleanly(self):
        content = os.urandom(1000)
        sha1 = self.fileResult(content)
        proxy = self.makeProxy()
        rule = proxy.replaceHeader("Content-Length", "nope", sha1=sha1)
        worker = self.makeWorker(proxy.url)
        e = yield assert_fails_with(
            worker.getFile(sha1, self.target()), CannotFetchFile
        )
        self.assertIn("bad Content-Length 'nope'", str(e))
        self.assertEqual(1, rule.applied)
        self.assertEqual(sha1, e.sha1)
        self.assertEqual([], self.waits)
        self.assertDownloadDirEmpty()

    @defer.inlineCallbacks
    def test_unwritable_target_fails_without_retry(self):
        sha1 = self.fileResult(b"content")
        worker = self.makeWorker()
        e = yield assert_fails_with(
            worker.getFile(sha1, os.path.join(self.target("absent"), "x")),
            CannotFetchFile,
        )
        self.assertIn("cannot write", str(e))
        self.assertEqual([], self.waits)

    @defer.inlineCallbacks
    def test_existing_target_untouched_on_failure(self):
        with open(self.target(), "wb") as f:
            f.write(b"old")
        yield assert_fails_with(
            self.makeWorker().getFile("0" * 40, self.target()),
            BuilderFileNotFound,
        )
        with open(self.target(), "rb") as f:
            self.assertEqual(b"old", f.read())
        self.assertEqual(["out"], os.listdir(self.download_dir))


class TestBuilderWorkerGetFiles(BuilderWorkerTestCase):
    @defer.inlineCallbacks
    def test_bounded_concurrency(self):
        files = []
        contents = []
        for i in range(6):
            content = os.urandom(50000 + i)
            contents.append(content)
            files.append((self.fileResult(content), self.target("file%d" % i)))
        proxy = self.makeProxy()
        proxy.delay(0.15, times=None)
        worker = self.makeWorker(proxy.url, max_concurrency=4)
        results = yield worker.getFiles(files, max_concurrency=2)
        self.assertThat(
            results,
            Equals(
                [
                    DownloadResult(
                        path, sha1, sha256_hex(content), len(content)
                    )
                    for (sha1, path), content in zip(files, contents)
                ]
            ),
        )
        self.assertEqual(6, len(proxy.requests))
        # The proxy notices a finished connection a moment after the
        # client has moved on, so its count may overlap by one; the
        # builder's own count is the bound that matters.
        self.assertThat(proxy.peak_requests, GreaterThan(1))
        self.assertThat(
            self.loopback.filecache.peak_requests, Not(GreaterThan(2))
        )
        for (sha1, path), content in zip(files, contents):
            self.assertFileContent(content, path)

    @defer.inlineCallbacks
    def test_default_concurrency_from_constructor(self):
        files = []
        for i in range(4):
            sha1 = self.fileResult(os.urandom(1000 + i))
            files.append((sha1, self.target("file%d" % i)))
        proxy = self.makeProxy()
        proxy.delay(0.3, times=None)
        yield self.makeWorker(proxy.url, max_concurrency=3).getFiles(files)
        self.assertThat(proxy.peak_requests, GreaterThan(1))
        self.assertThat(
            self.loopback.filecache.peak_requests, Not(GreaterThan(3))
        )

    @defer.inlineCallbacks
    def test_failure_raised_and_later_files_not_started(self):
        good = self.fileResult(b"good")
        later = self.fileResult(b"later")
        files = [
            (good, self.target("good")),
            ("0" * 40, self.target("missing")),
            (later, self.target("later")),
        ]
        proxy = self.makeProxy()
        worker = self.makeWorker(proxy.url)
        e = yield assert_fails_with(
            worker.getFiles(files, max_concurrency=1), BuilderFileNotFound
        )
        self.assertEqual("0" * 40, e.sha1)
        self.assertEqual(["good"], os.listdir(self.download_dir))
        self.assertEqual(2, len(proxy.requests))

    def test_duplicate_targets_refused(self):
        worker = self.makeWorker()
        return assert_fails_with(
            worker.getFiles(
                [("0" * 40, self.target()), ("1" * 40, self.target())]
            ),
            ValueError,
        )

    @defer.inlineCallbacks
    def test_empty(self):
        results = yield self.makeWorker().getFiles([])
        self.assertEqual([], results)

    @defer.inlineCallbacks
    def test_results_carry_hashes_from_the_download_process(self):
        content = b"layer" * 1000
        sha1 = self.fileResult(content)
        (result,) = yield self.makeWorker().getFiles([(sha1, self.target())])
        self.assertThat(
            result,
            MatchesStructure.byEquality(
                sha1=sha1, sha256=sha256_hex(content), size=len(content)
            ),
        )
