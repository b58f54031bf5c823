# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""zope.testrunner layers for tests that need a running builder."""

__all__ = [
    "BuilderLayer",
    "ReactorThreadLayer",
]

import shutil
import tempfile

from lpbuildd.server import BuilderServer


class ReactorThreadLayer:
    """For tests whose servers run the global reactor in a thread.

    In-process `BuilderServer`s run the global reactor in a daemon thread
    (`ensureReactorThread`) that runs until the process ends, so tests
    that spin the reactor themselves (testtools'
    `AsynchronousDeferredRunTest`, as the build farm master's tests do)
    cannot run in the same process afterwards.  This layer cannot be
    torn down, so zope.testrunner runs the layers after it in a fresh
    subprocess.
    """

    @classmethod
    def setUp(cls):
        pass

    @classmethod
    def tearDown(cls):
        raise NotImplementedError

    @classmethod
    def testSetUp(cls):
        pass

    @classmethod
    def testTearDown(cls):
        pass


class BuilderLayer(ReactorThreadLayer):
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
        # See ReactorThreadLayer.
        raise NotImplementedError

    @classmethod
    def testSetUp(cls):
        cls.builder.reset()
        filecache = cls.server.filecache
        filecache.peak_requests = filecache.active_requests

    @classmethod
    def testTearDown(cls):
        cls.builder.reset()
