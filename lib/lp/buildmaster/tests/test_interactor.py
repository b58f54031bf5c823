# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `BuilderWorker` against a real builder on loopback."""

__all__ = []

import hashlib
import io
import os
import xmlrpc.client

from fixtures import TempDir
from testtools import TestCase
from testtools.matchers import (
    ContainsDict,
    Equals,
    GreaterThan,
    IsInstance,
    LessThan,
    Not,
)

from lp.buildmaster.enums import WorkerBuilderStatus, WorkerBuildStatus
from lp.buildmaster.interactor import (
    CHUNK_SIZE,
    BuilderConnectionError,
    BuilderFileCorrupt,
    BuilderFileIncomplete,
    BuilderFileNotFound,
    BuilderServerError,
    BuilderTimeout,
    BuilderWorker,
    CannotFetchFile,
    RetryPolicy,
)
from lpbuildd.server import BuilderServer
from lpbuildd.testing.faultproxy import FaultProxy, FaultRule
from lpbuildd.testing.layers import BuilderLayer


def sha1_hex(content):
    return hashlib.sha1(content).hexdigest()


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
    def test_getURL(self):
        worker = BuilderWorker.makeBuilderWorker(
            "http://127.0.0.1:8221/", vm_host=None, timeout=5
        )
        self.assertEqual(
            "http://127.0.0.1:8221/filecache/" + "a" * 40,
            worker.getURL("a" * 40),
        )

    def test_getFile_rejects_malformed_sha1(self):
        worker = BuilderWorker("http://127.0.0.1:1")
        self.assertRaises(ValueError, worker.getFile, "../x", io.BytesIO())

    def test_connection_refused(self):
        server = BuilderServer(self.useFixture(TempDir()).path)
        url = server.start()
        server.stop()
        worker = BuilderWorker(url, connect_timeout=2)
        self.addCleanup(worker.close)
        self.assertRaises(BuilderConnectionError, worker.status)


class BuilderWorkerTestCase(TestCase):
    layer = BuilderLayer

    def setUp(self):
        super().setUp()
        self.work_dir = self.useFixture(TempDir()).path
        self.download_dir = self.useFixture(TempDir()).path
        self.sleeps = []

    def makeWorker(self, url=None, **kwargs):
        kwargs.setdefault(
            "retry_policy", RetryPolicy(attempts=3, initial_delay=0.01)
        )
        kwargs.setdefault("timeout", 5)
        kwargs.setdefault("sleep", self.sleeps.append)
        worker = BuilderWorker(url or BuilderLayer.url, **kwargs)
        self.addCleanup(worker.close)
        return worker

    def makeProxy(self):
        proxy = FaultProxy(BuilderLayer.url)
        proxy.start()
        self.addCleanup(proxy.stop)
        return proxy

    def fileResult(self, content, name=None):
        """File `content` as a waiting file on the builder."""
        name = name or "result-%s" % sha1_hex(content)[:8]
        path = os.path.join(self.work_dir, name)
        with open(path, "wb") as f:
            f.write(content)
        return BuilderLayer.builder.addWaitingFile(path)

    def target(self, name="out"):
        return os.path.join(self.download_dir, name)

    def assertDownloadDirEmpty(self):
        self.assertEqual([], os.listdir(self.download_dir))


class TestBuilderWorkerRPC(BuilderWorkerTestCase):
    def test_status_round_trip(self):
        worker = self.makeWorker()
        self.assertEqual(
            {"builder_status": WorkerBuilderStatus.IDLE}, worker.status()
        )
        builder = BuilderLayer.builder
        builder.startBuild("42-1")
        builder.log("Building the image\n")
        status = worker.status()
        self.assertEqual(
            WorkerBuilderStatus.BUILDING, status["builder_status"]
        )
        self.assertThat(status["logtail"], IsInstance(xmlrpc.client.Binary))
        self.assertEqual(b"Building the image\n", status["logtail"].data)
        sha1 = self.fileResult(b"{}", name="manifest.json")
        builder.buildComplete()
        self.assertThat(
            worker.status(),
            ContainsDict(
                {
                    "builder_status": Equals(WorkerBuilderStatus.WAITING),
                    "build_status": Equals(WorkerBuildStatus.OK),
                    "build_id": Equals("42-1"),
                    "filemap": Equals({"manifest.json": sha1}),
                }
            ),
        )
        self.assertEqual(WorkerBuilderStatus.IDLE, worker.clean())
        self.assertEqual(
            WorkerBuilderStatus.IDLE, worker.status()["builder_status"]
        )

    def test_echo_and_info(self):
        worker = self.makeWorker()
        self.assertEqual(["a", 1, None], worker.echo("a", 1, None))
        self.assertEqual(["1.0", "amd64", []], worker.info())

    def test_fault_is_raised(self):
        worker = self.makeWorker()
        self.assertRaises(xmlrpc.client.Fault, worker.clean)

    def test_rpc_timeout(self):
        proxy = self.makeProxy()
        proxy.delay(10, path_prefix="/rpc")
        worker = self.makeWorker(proxy.url, timeout=0.2)
        self.assertRaises(BuilderTimeout, worker.status)

    def test_rpc_server_error(self):
        proxy = self.makeProxy()
        proxy.addRule(FaultRule("status", status=502, path_prefix="/rpc"))
        worker = self.makeWorker(proxy.url)
        e = self.assertRaises(BuilderServerError, worker.status)
        self.assertEqual(502, e.status)


class TestBuilderWorkerGetFile(BuilderWorkerTestCase):
    def test_multi_megabyte_file_to_path(self):
        content = os.urandom(8 * 1024 * 1024 + 5)
        sha1 = self.fileResult(content)
        worker = self.makeWorker()
        worker.getFile(sha1, self.target())
        with open(self.target(), "rb") as f:
            self.assertEqual(sha1, sha1_hex(f.read()))
        self.assertEqual(["out"], os.listdir(self.download_dir))
        self.assertEqual([], self.sleeps)

    def test_file_object_target(self):
        sha1 = self.fileResult(b"config")
        out = io.BytesIO()
        self.makeWorker().getFile(sha1, out)
        self.assertEqual(b"config", out.getvalue())

    def test_streams_in_bounded_chunks(self):
        # Neither the download nor the hand-over to the caller's file
        # holds more than one chunk.
        content = os.urandom(6 * 1024 * 1024)
        sha1 = self.fileResult(content)
        writes = []

        class RecordingFile(io.RawIOBase):
            def writable(self):
                return True

            def write(self, data):
                writes.append(len(data))
                return len(data)

        worker = self.makeWorker()
        worker._fetchOnce(sha1, worker.getURL(sha1), RecordingFile())
        self.assertEqual(len(content), sum(writes))
        self.assertThat(max(writes), Not(GreaterThan(CHUNK_SIZE)))
        del writes[:]
        worker.getFile(sha1, RecordingFile())
        self.assertEqual(len(content), sum(writes))
        self.assertThat(max(writes), Not(GreaterThan(CHUNK_SIZE)))
        self.assertThat(CHUNK_SIZE, LessThan(len(content)))

    def test_not_found_fails_fast(self):
        proxy = self.makeProxy()
        worker = self.makeWorker(proxy.url)
        e = self.assertRaises(
            BuilderFileNotFound, worker.getFile, "0" * 40, self.target()
        )
        self.assertIn("0" * 40, str(e))
        self.assertEqual("0" * 40, e.sha1)
        self.assertEqual([], self.sleeps)
        self.assertEqual(["/filecache/" + "0" * 40], proxy.requests)
        self.assertDownloadDirEmpty()

    def test_corrupt_cache_file_retried_then_fails_cleanly(self):
        content = os.urandom(100000)
        sha1 = self.fileResult(content)
        # Corrupt the cached copy in place (same length, wrong bytes).
        with open(BuilderLayer.builder.cachePath(sha1), "r+b") as f:
            f.write(b"X" * 10)
        proxy = self.makeProxy()
        worker = self.makeWorker(proxy.url)
        e = self.assertRaises(
            BuilderFileCorrupt, worker.getFile, sha1, self.target()
        )
        self.assertEqual(sha1, e.sha1)
        self.assertEqual(3, e.attempts)
        self.assertEqual(3, len(proxy.requests))
        self.assertEqual(2, len(self.sleeps))
        self.assertDownloadDirEmpty()

    def test_connection_dropped_mid_file_recovered(self):
        content = os.urandom(3 * 1024 * 1024)
        sha1 = self.fileResult(content)
        proxy = self.makeProxy()
        rule = proxy.dropAfter(1024 * 1024, sha1=sha1, times=1)
        worker = self.makeWorker(proxy.url)
        worker.getFile(sha1, self.target())
        self.assertEqual(1, rule.applied)
        self.assertEqual(2, len(proxy.requests))
        self.assertEqual(1, len(self.sleeps))
        with open(self.target(), "rb") as f:
            self.assertEqual(sha1, sha1_hex(f.read()))
        self.assertEqual(["out"], os.listdir(self.download_dir))

    def test_connection_reset_mid_file_recovered(self):
        sha1 = self.fileResult(os.urandom(500000))
        proxy = self.makeProxy()
        proxy.dropAfter(1000, sha1=sha1, times=1, reset=True)
        out = io.BytesIO()
        self.makeWorker(proxy.url).getFile(sha1, out)
        self.assertEqual(sha1, sha1_hex(out.getvalue()))

    def test_connection_always_dropped_fails_cleanly(self):
        sha1 = self.fileResult(os.urandom(500000))
        proxy = self.makeProxy()
        proxy.dropAfter(1000, sha1=sha1, times=None)
        worker = self.makeWorker(proxy.url)
        e = self.assertRaises(
            BuilderFileIncomplete, worker.getFile, sha1, self.target()
        )
        self.assertIsInstance(e, CannotFetchFile)
        self.assertEqual(3, len(proxy.requests))
        self.assertDownloadDirEmpty()

    def test_timeout_before_response_retried(self):
        sha1 = self.fileResult(b"slow")
        proxy = self.makeProxy()
        rule = proxy.delay(10, sha1=sha1, times=1)
        worker = self.makeWorker(proxy.url, timeout=1)
        worker.getFile(sha1, self.target())
        self.assertEqual(1, rule.applied)
        self.assertEqual(1, len(self.sleeps))
        with open(self.target(), "rb") as f:
            self.assertEqual(b"slow", f.read())

    def test_stall_mid_body_retried(self):
        sha1 = self.fileResult(os.urandom(300000))
        proxy = self.makeProxy()
        proxy.stallAfter(1000, 10, sha1=sha1, times=1)
        worker = self.makeWorker(proxy.url, timeout=1)
        worker.getFile(sha1, self.target())
        self.assertEqual(2, len(proxy.requests))
        self.assertEqual(["out"], os.listdir(self.download_dir))

    def test_timeouts_exhaust_retries(self):
        sha1 = self.fileResult(b"slow")
        proxy = self.makeProxy()
        proxy.delay(10, sha1=sha1, times=None)
        worker = self.makeWorker(
            proxy.url,
            timeout=0.2,
            retry_policy=RetryPolicy(attempts=2, initial_delay=0),
        )
        self.assertRaises(BuilderTimeout, worker.getFile, sha1, self.target())
        self.assertDownloadDirEmpty()

    def test_server_errors_retried(self):
        sha1 = self.fileResult(b"flaky")
        proxy = self.makeProxy()
        proxy.failWith(503, sha1=sha1, times=2)
        out = io.BytesIO()
        self.makeWorker(proxy.url).getFile(sha1, out)
        self.assertEqual(b"flaky", out.getvalue())
        self.assertEqual(2, len(self.sleeps))

    def test_server_errors_exhaust_retries(self):
        sha1 = self.fileResult(b"flaky")
        proxy = self.makeProxy()
        proxy.failWith(500, sha1=sha1, times=None)
        worker = self.makeWorker(proxy.url)
        e = self.assertRaises(
            BuilderServerError, worker.getFile, sha1, self.target()
        )
        self.assertEqual(500, e.status)
        self.assertDownloadDirEmpty()

    def test_bad_content_length_fails_cleanly(self):
        # Used to escape as a ValueError from int().
        content = os.urandom(1000)
        sha1 = self.fileResult(content)
        proxy = self.makeProxy()
        rule = proxy.replaceHeader("Content-Length", "nope", sha1=sha1)
        worker = self.makeWorker(proxy.url)
        e = self.assertRaises(
            CannotFetchFile, worker.getFile, sha1, self.target()
        )
        self.assertIn("bad Content-Length 'nope'", str(e))
        self.assertEqual(1, rule.applied)
        self.assertEqual(sha1, e.sha1)
        self.assertDownloadDirEmpty()

    def test_existing_target_untouched_on_failure(self):
        with open(self.target(), "wb") as f:
            f.write(b"old")
        worker = self.makeWorker()
        self.assertRaises(
            BuilderFileNotFound, worker.getFile, "0" * 40, self.target()
        )
        with open(self.target(), "rb") as f:
            self.assertEqual(b"old", f.read())
        self.assertEqual(["out"], os.listdir(self.download_dir))


class TestBuilderWorkerGetFiles(BuilderWorkerTestCase):
    def test_bounded_concurrency(self):
        files = []
        for i in range(6):
            sha1 = self.fileResult(os.urandom(50000 + i))
            files.append((sha1, self.target("file%d" % i)))
        proxy = self.makeProxy()
        proxy.delay(0.15, times=None)
        worker = self.makeWorker(proxy.url, max_concurrency=5)
        result = worker.getFiles(files, max_concurrency=2)
        self.assertEqual([path for _, path in files], result)
        self.assertEqual(6, len(proxy.requests))
        # The proxy notices a finished connection a moment after the
        # client has moved on, so its count may overlap by one; the
        # server's own count (decremented before the last byte leaves)
        # is the bound that matters.  The proxy shows overlap happened.
        self.assertThat(proxy.peak_requests, GreaterThan(1))
        self.assertThat(
            BuilderLayer.server.filecache.peak_requests,
            Not(GreaterThan(2)),
        )
        for sha1, path in files:
            with open(path, "rb") as f:
                self.assertEqual(sha1, sha1_hex(f.read()))

    def test_default_concurrency_from_constructor(self):
        files = []
        for i in range(4):
            sha1 = self.fileResult(os.urandom(1000 + i))
            files.append((sha1, self.target("file%d" % i)))
        proxy = self.makeProxy()
        proxy.delay(0.15, times=None)
        self.makeWorker(proxy.url, max_concurrency=3).getFiles(files)
        self.assertThat(proxy.peak_requests, GreaterThan(2))
        self.assertThat(
            BuilderLayer.server.filecache.peak_requests,
            Not(GreaterThan(3)),
        )

    def test_failure_raised_and_missing_file_absent(self):
        good = self.fileResult(b"good")
        files = [
            (good, self.target("good")),
            ("0" * 40, self.target("missing")),
        ]
        worker = self.makeWorker()
        e = self.assertRaises(
            BuilderFileNotFound, worker.getFiles, files, max_concurrency=1
        )
        self.assertEqual("0" * 40, e.sha1)
        self.assertNotIn("missing", os.listdir(self.download_dir))
        self.assertFalse(
            [n for n in os.listdir(self.download_dir) if n.startswith(".")]
        )

    def test_duplicate_targets_refused(self):
        worker = self.makeWorker()
        self.assertRaises(
            ValueError,
            worker.getFiles,
            [("0" * 40, self.target()), ("1" * 40, self.target())],
        )

    def test_empty(self):
        self.assertEqual([], self.makeWorker().getFiles([]))
