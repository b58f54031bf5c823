# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""zope.testrunner layers for tests that need a running builder."""

__all__ = [
    "BuilderLayer",
]

import shutil
import tempfile

from lpbuildd.builder import BuilderServer


class BuilderLayer:
    """A real builder server on 127.0.0.1 for the tests in this layer.

    Tests use `BuilderLayer.url`, `BuilderLayer.cache_dir`,
    `BuilderLayer.builder` (the `lpbuildd.builder.Builder`, to drive the
    build state and file results) and `BuilderLayer.server` (the
    `BuilderServer`).  Each test starts with an IDLE builder and an
    empty file cache.
    """

    server = None
    builder = None
    url = None
    cache_dir = None

    @classmethod
    def setUp(cls):
        cls.cache_dir = tempfile.mkdtemp(prefix="lpbuildd-cache-")
        cls.server = BuilderServer(cls.cache_dir)
        cls.url = cls.server.start()
        cls.builder = cls.server.builder

    @classmethod
    def tearDown(cls):
        if cls.server is not None:
            cls.server.stop()
        if cls.cache_dir is not None:
            shutil.rmtree(cls.cache_dir, ignore_errors=True)
        cls.server = cls.builder = cls.url = cls.cache_dir = None
        # The server ran on the global reactor in a daemon thread
        # (`ensureReactorThread`), which keeps running: tests that spin
        # the reactor themselves (testtools' AsynchronousDeferredRunTest,
        # as the build farm master's tests do) cannot run in this
        # process any more.  zope.testrunner runs the remaining layers
        # in a fresh subprocess when a layer cannot be torn down.
        raise NotImplementedError

    @classmethod
    def testSetUp(cls):
        cls.builder.reset()
        filecache = cls.server.filecache
        filecache.peak_requests = filecache.active_requests

    @classmethod
    def testTearDown(cls):
        cls.builder.reset()
