# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the builder's HTTP server: XML-RPC and the file cache."""

__all__ = []

import hashlib
import http.client
import os
import urllib.parse
import xmlrpc.client
from unittest import mock

from fixtures import TempDir
from testtools import TestCase
from testtools.matchers import (
    ContainsDict,
    Equals,
    GreaterThan,
    IsInstance,
    LessThan,
    MatchesDict,
    Not,
)

from lpbuildd.builder import BuilderStatus, BuildStatus
from lpbuildd.server import BuilderServer, _FileSender
from lpbuildd.testing.fixtures import BuilderProcess
from lpbuildd.testing.layers import BuilderLayer, ReactorThreadLayer


def make_file(directory, name, content):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(content)
    return path


def sha1_hex(content):
    return hashlib.sha1(content).hexdigest()


def rpc_proxy(test, url):
    """Return an XML-RPC proxy for `url` that is closed after `test`."""
    proxy = xmlrpc.client.ServerProxy(url, allow_none=True)
    test.addCleanup(proxy("close"))
    return proxy


def http_get(url, raw_path, method="GET"):
    """Send `raw_path` exactly as given (no client-side normalisation)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port)
    try:
        connection.request(method, raw_path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


class TestBuilderServerLifecycle(TestCase):
    # In-process servers leave the reactor running in a thread.
    layer = ReactorThreadLayer

    def test_start_stop_start_again(self):
        cache_dir = self.useFixture(TempDir()).path
        for _ in range(3):
            server = BuilderServer(cache_dir)
            url = server.start()
            self.addCleanup(server.stop)
            proxy = rpc_proxy(self, url + "/rpc")
            self.assertEqual(
                BuilderStatus.IDLE, proxy.status()["builder_status"]
            )
            server.stop()
            self.assertRaises(
                ConnectionRefusedError,
                xmlrpc.client.ServerProxy(url + "/rpc").status,
            )

    def test_two_servers_at_once(self):
        one = BuilderServer(self.useFixture(TempDir()).path)
        two = BuilderServer(self.useFixture(TempDir()).path)
        self.addCleanup(one.builder.reset)
        with one, two:
            self.assertNotEqual(one.url, two.url)
            one.builder.startBuild("1-1")
            status = rpc_proxy(self, two.url + "/rpc").status()
            self.assertEqual(BuilderStatus.IDLE, status["builder_status"])

    def test_stop_drops_open_connections(self):
        server = BuilderServer(self.useFixture(TempDir()).path)
        server.start()
        parts = urllib.parse.urlsplit(server.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port)
        connection.connect()
        self.addCleanup(connection.close)
        server.stop()
        connection.sock.settimeout(5)
        try:
            data = connection.sock.recv(1)
        except ConnectionResetError:
            data = b""
        self.assertEqual(b"", data)

    def test_subprocess(self):
        work_dir = self.useFixture(TempDir()).path
        path = make_file(work_dir, "digests.json", b"[]")
        builder = self.useFixture(
            BuilderProcess(waiting_files=[path], build_id="7-7")
        )
        status = rpc_proxy(self, builder.url + "/rpc").status()
        self.assertThat(
            status,
            ContainsDict(
                {
                    "builder_status": Equals(BuilderStatus.WAITING),
                    "build_id": Equals("7-7"),
                    "filemap": Equals({"digests.json": sha1_hex(b"[]")}),
                }
            ),
        )
        code, _, body = http_get(builder.url, "/filecache/" + sha1_hex(b"[]"))
        self.assertEqual((200, b"[]"), (code, body))


class TestBuilderHTTP(TestCase):
    layer = BuilderLayer

    def setUp(self):
        super().setUp()
        self.work_dir = self.useFixture(TempDir()).path
        self.rpc = rpc_proxy(self, BuilderLayer.url + "/rpc")

    def fileResult(self, content, name="result"):
        path = make_file(self.work_dir, name, content)
        return BuilderLayer.builder.addWaitingFile(path)

    def test_status_round_trip(self):
        self.assertEqual(
            {"builder_status": BuilderStatus.IDLE}, self.rpc.status()
        )
        builder = BuilderLayer.builder
        builder.startBuild("5-5")
        builder.log("building\n")
        sha1 = self.fileResult(b"data")
        builder.buildComplete()
        self.assertThat(
            self.rpc.status(),
            MatchesDict(
                {
                    "builder_status": Equals(BuilderStatus.WAITING),
                    "build_status": Equals(BuildStatus.OK),
                    "build_id": Equals("5-5"),
                    "filemap": Equals({"result": sha1}),
                    "dependencies": Equals(""),
                    "logtail": IsInstance(xmlrpc.client.Binary),
                    "build_log_sha1": Equals(sha1_hex(b"building\n")),
                }
            ),
        )
        self.assertEqual(BuilderStatus.IDLE, self.rpc.clean())
        self.assertFalse(builder.cache.contains(sha1))

    def test_rpc_with_trailing_slash(self):
        rpc = rpc_proxy(self, BuilderLayer.url + "/rpc/")
        self.assertEqual([1, "two"], rpc.echo(1, "two"))
        self.assertEqual(["1.0", "amd64", []], rpc.info())

    def test_clean_when_idle_is_a_fault(self):
        e = self.assertRaises(xmlrpc.client.Fault, self.rpc.clean)
        self.assertIn("not WAITING", e.faultString)

    def test_ensurepresent(self):
        sha1 = self.fileResult(b"chroot")
        self.assertEqual(
            [True, "No URL"], self.rpc.ensurepresent(sha1, None, None, None)
        )
        self.assertEqual(
            [False, "No URL"],
            self.rpc.ensurepresent("0" * 40, None, None, None),
        )
        # Fetch from ourselves under a new name: digest mismatch.
        present, info = self.rpc.ensurepresent(
            "1" * 40, BuilderLayer.url + "/filecache/" + sha1, None, None
        )
        self.assertFalse(present)
        self.assertIn("did not match", info)

    def test_filecache_serves_file(self):
        content = os.urandom(3 * 1024 * 1024 + 17)
        sha1 = self.fileResult(content)
        code, headers, body = http_get(BuilderLayer.url, "/filecache/" + sha1)
        self.assertEqual(200, code)
        self.assertEqual(str(len(content)), headers["Content-Length"])
        self.assertEqual(sha1, sha1_hex(body))

    def test_filecache_head(self):
        sha1 = self.fileResult(b"12345")
        code, headers, body = http_get(
            BuilderLayer.url, "/filecache/" + sha1, method="HEAD"
        )
        self.assertEqual(
            (200, "5", b""), (code, headers["Content-Length"], body)
        )

    def test_filecache_unknown_sha1(self):
        code, _, _ = http_get(BuilderLayer.url, "/filecache/" + "0" * 40)
        self.assertEqual(404, code)

    def test_filecache_path_traversal(self):
        secret = make_file(BuilderLayer.cache_dir, "buildlog", b"secret")
        self.addCleanup(os.unlink, secret)
        sha1 = self.fileResult(b"public")
        for raw_path in (
            "/filecache/../buildlog",
            "/filecache/..%2Fbuildlog",
            "/filecache/%2e%2e/buildlog",
            "/filecache/%2E%2E%2Fbuildlog",
            "/filecache/buildlog",
            "/filecache/.",
            "/filecache/",
            "/filecache",
            "/filecache/" + sha1.upper(),
            "/filecache/" + sha1 + "/",
            "/filecache/" + sha1 + "/..",
            "/filecache/" + sha1[:-1],
            "/filecache/" + sha1 + "0",
            "/filecache/%2F" + sha1,
            "/filecache/%00" + sha1,
            "/filecache//etc/passwd",
            "/filecache/%2Fetc%2Fpasswd",
            "/" + sha1,
        ):
            code, _, body = http_get(BuilderLayer.url, raw_path)
            self.assertEqual(404, code, raw_path)
            self.assertNotIn(b"secret", body)

    def test_filecache_streams_with_bounded_reads(self):
        # The server never holds a whole file: it hands the open file to
        # a producer that reads one small chunk per write.
        chunk = _FileSender.CHUNK_SIZE
        content = os.urandom(16 * chunk)
        sha1 = self.fileResult(content)
        reads = []
        cache = BuilderLayer.builder.cache
        real_open = cache.open

        class RecordingFile:
            def __init__(self, f):
                self._f = f

            def read(self, size=-1):
                reads.append(size)
                return self._f.read(size)

            def __getattr__(self, name):
                return getattr(self._f, name)

        with mock.patch.object(
            cache, "open", lambda s: RecordingFile(real_open(s))
        ):
            code, _, body = http_get(BuilderLayer.url, "/filecache/" + sha1)
        self.assertEqual((200, sha1), (code, sha1_hex(body)))
        self.assertThat(len(reads), GreaterThan(15))
        self.assertNotIn(-1, reads)
        self.assertThat(max(reads), Not(GreaterThan(chunk)))
        self.assertThat(chunk, LessThan(1024 * 1024 + 1))

    def test_layer_resets_state(self):
        # Each test starts IDLE with an empty cache (see BuilderLayer).
        self.assertEqual(
            BuilderStatus.IDLE, BuilderLayer.builder.builderstatus
        )
        self.assertEqual([], os.listdir(BuilderLayer.cache_dir))
