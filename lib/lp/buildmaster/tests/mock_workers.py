# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Builders for build farm tests: a real one on loopback, and a fake.

Tests of the build farm master run with testtools'
`AsynchronousDeferredRunTest`, which spins the global reactor in the
main thread for each test and fails a test that leaves anything on it.
So a test gets its own real builder, served on that same reactor
(`LoopbackBuilder`: launchpad-buildd's state machine and HTTP site from
`lpbuildd`, listening on 127.0.0.1 while the test runs and stopped by
its cleanup), and its own download process pool
(`BuilderWorkerTestMixin.makeProcessPool`), stopped by its cleanup too.

The test drives the builder's state directly (``builder.startBuild``,
``addWaitingFile``, ``buildComplete``) between the Deferreds it waits
on; the builder answers whenever the test waits.

Launchpad runs a real launchpad-buildd in a separate process for such
tests; here the builder's code is in the tree and cheap to run
in-process, and a fault-injecting proxy (`lpbuildd.testing.faultproxy`)
in front of it covers what a real builder cannot be made to do.
"""

__all__ = [
    "BuilderWorkerTestMixin",
    "FakeWorker",
    "LoopbackBuilder",
]

import hashlib
import os
import re

from fixtures import TempDir
from testtools.twistedsupport import AsynchronousDeferredRunTest
from twisted.internet import defer
from twisted.internet import reactor as default_reactor

from lp.buildmaster.interactor import (
    BuilderFileNotFound,
    BuilderWorker,
    DownloadResult,
    RetryPolicy,
    make_download_process_pool,
)
from lpbuildd.server import BuilderServer


class LoopbackBuilder(BuilderServer):
    """A real builder served on the current reactor at 127.0.0.1.

    launchpad-buildd's `BuilderServer`, listening on the reactor the test
    runner spins rather than on one in a thread.

    :ivar builder: The `lpbuildd.builder.Builder`, to drive the build
        state and file results.
    :ivar site: Its HTTP site (``site.resource.filecache`` counts
        transfers).
    :ivar url: Its URL once started.
    """

    def __init__(self, cache_dir, reactor=None):
        super().__init__(cache_dir)
        self.cache_dir = cache_dir
        self.reactor = reactor or default_reactor

    def start(self):
        """Listen on a free port; return the URL."""
        return self.listen(self.reactor)

    def stop(self):
        """Stop listening and drop connections; return a Deferred."""
        return self.stopListening()

    def fileResult(self, content, name=None):
        """File ``content`` as a waiting file; return its SHA-1."""
        name = name or "result-%s" % hashlib.sha1(content).hexdigest()[:8]
        directory = os.path.join(self.cache_dir, os.pardir)
        path = os.path.join(directory, "waiting-" + name)
        with open(path, "wb") as f:
            f.write(content)
        try:
            return self.builder.addWaitingFile(path, name=name)
        finally:
            os.unlink(path)


class BuilderWorkerTestMixin:
    """A real builder and a download process pool for each test.

    For `testtools.TestCase`s; sets `run_tests_with`.
    """

    run_tests_with = AsynchronousDeferredRunTest.make_factory(timeout=30)

    def useLoopbackBuilder(self):
        """Start a `LoopbackBuilder` for this test and return it."""
        base = self.useFixture(TempDir()).path
        cache_dir = os.path.join(base, "cache")
        os.mkdir(cache_dir)
        loopback = LoopbackBuilder(cache_dir)
        loopback.start()
        self.addCleanup(loopback.stop)
        return loopback

    def makeProcessPool(self, **kwargs):
        """A download process pool, stopped when the test ends."""
        kwargs.setdefault("max", 4)
        pool = make_download_process_pool(**kwargs)
        pool.start()
        self.addCleanup(pool.stop)
        return pool

    def makeWorker(self, url, process_pool=None, **kwargs):
        """A `BuilderWorker` for ``url`` using this test's process pool."""
        if process_pool is None:
            process_pool = getattr(self, "_test_process_pool", None)
            if process_pool is None:
                process_pool = self._test_process_pool = self.makeProcessPool()
        kwargs.setdefault(
            "retry_policy", RetryPolicy(attempts=3, initial_delay=0.01)
        )
        timeout = kwargs.pop("timeout", 5)
        return BuilderWorker.makeBuilderWorker(
            url, None, timeout, process_pool=process_pool, **kwargs
        )


class FakeWorker:
    """Records what a behaviour asks of the builder; answers at once.

    Like `BuilderWorker`, it refuses to fetch a malformed SHA-1, and
    returns Deferreds.

    :param contents: {sha1: bytes} it serves (b"data" for others).
    :param missing: SHA-1s it does not have.
    """

    def __init__(self, contents=None, missing=()):
        self.contents = contents or {}
        self.missing = set(missing)
        self.fetched = []
        self.cleaned = 0

    def getURL(self, sha1):
        return "http://fake-builder/filecache/" + sha1

    def getFile(self, sha1, path, logger=None):
        if sha1 != "buildlog" and not re.fullmatch(r"[0-9a-f]{40}", sha1):
            return defer.fail(ValueError(f"Not a SHA-1: {sha1!r}"))
        if sha1 in self.missing:
            return defer.fail(
                BuilderFileNotFound(
                    self.getURL(sha1), "builder has no file", sha1=sha1
                )
            )
        self.fetched.append(sha1)
        content = self.contents.get(sha1, b"data")
        with open(path, "wb") as f:
            f.write(content)
        return defer.succeed(
            DownloadResult(
                path,
                sha1,
                hashlib.sha256(content).hexdigest(),
                len(content),
            )
        )

    @defer.inlineCallbacks
    def getFiles(self, files, logger=None, max_concurrency=None):
        results = []
        for sha1, path in files:
            result = yield self.getFile(sha1, path, logger=logger)
            results.append(result)
        return results

    def clean(self):
        self.cleaned += 1
        return defer.succeed("BuilderStatus.IDLE")
