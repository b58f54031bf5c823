# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The builder's HTTP server: XML-RPC and the file cache.

What launchpad-buildd's ``buildd.tac`` sets up, as a class that can be
started and stopped in-process:

- `makeSite` serves a `Builder`'s `XMLRPCBuilder` at ``/rpc`` and its
  file cache at ``/filecache/<sha1>`` (`FileCacheResource`).
- `BuilderServer` runs that site on a Twisted reactor.  A reactor can
  run only once per process, so in-process servers share one reactor
  running in a daemon thread (`ensureReactorThread`); each server only
  adds and removes its own listening port, so servers can be started
  and stopped any number of times.  ``python -m lpbuildd.server`` runs
  a server in the foreground instead (see `main`).
"""

__all__ = [
    "BuilderServer",
    "FileCacheResource",
    "ensureReactorThread",
    "main",
    "makeSite",
]

import argparse
import os
import sys
import threading

from twisted.internet.defer import maybeDeferred, succeed
from twisted.internet.threads import blockingCallFromThread
from twisted.protocols.basic import FileSender
from twisted.protocols.policies import WrappingFactory
from twisted.python import log
from twisted.python.failure import Failure
from twisted.web import pages, resource, server

from lpbuildd.builder import Builder, XMLRPCBuilder


class _FileSender(FileSender):
    """A `FileSender` that reads 256 KiB at a time, not 16 KiB.

    Each chunk costs a trip through the HTTP request and the transport;
    at 16 KiB, serving a 600 MB upload took that many trips that the
    reactor, not the network, set the transfer rate.  Memory stays
    bounded: the transport pauses the producer once its buffer is full.
    """

    CHUNK_SIZE = 256 * 1024


class FileCacheResource(resource.Resource):
    """Serve ``/filecache/<sha1>`` from the builder's file cache.

    The body is streamed with a `FileSender` producer (`_FileSender`), so
    memory use does not depend on the size of the file.  Exactly one path
    segment that is a well-formed SHA-1 is accepted; anything else is a
    404.

    `active_requests` and `peak_requests` count transfers in progress,
    for tests and monitoring.
    """

    isLeaf = True

    def __init__(self, cache):
        super().__init__()
        self.cache = cache
        self.active_requests = 0
        self.peak_requests = 0

    def _openFile(self, request):
        if len(request.postpath) != 1:
            return None
        try:
            sha1 = request.postpath[0].decode("ASCII")
        except UnicodeDecodeError:
            return None
        return self.cache.open(sha1)

    def _notFound(self, request):
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain")
        return b"Not found\n"

    def _setHeaders(self, request, f):
        request.setHeader(b"content-type", b"application/octet-stream")
        request.setHeader(
            b"content-length", b"%d" % os.fstat(f.fileno()).st_size
        )

    def render_HEAD(self, request):
        f = self._openFile(request)
        if f is None:
            return self._notFound(request)
        with f:
            self._setHeaders(request, f)
        return b""

    def render_GET(self, request):
        f = self._openFile(request)
        if f is None:
            return self._notFound(request)
        self._setHeaders(request, f)
        self.active_requests += 1
        self.peak_requests = max(self.peak_requests, self.active_requests)
        finished = request.notifyFinish()
        finished.addErrback(lambda failure: None)

        def done(result):
            self.active_requests -= 1
            f.close()
            if isinstance(result, Failure):
                # The transport stopped us: the client went away.
                if request.producer is not None:
                    request.unregisterProducer()
            elif not request.finished and not request._disconnected:
                request.finish()

        _FileSender().beginFileTransfer(f, request).addBoth(done)
        return server.NOT_DONE_YET


class _Root(resource.Resource):
    def __init__(self, builder):
        super().__init__()
        self.xmlrpc = XMLRPCBuilder(builder)
        self.filecache = FileCacheResource(builder.cache)
        self.putChild(b"rpc", self.xmlrpc)
        self.putChild(b"filecache", self.filecache)

    def getChild(self, name, request):
        return pages.notFound()

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain")
        return b"lpbuildd builder\n"


def makeSite(builder):
    """Return a Twisted `Site` serving ``/rpc`` and ``/filecache``."""
    site = server.Site(_Root(builder))
    site.displayTracebacks = False
    return site


_reactor_thread = None
_reactor_thread_lock = threading.Lock()


def ensureReactorThread():
    """Run the global reactor in a daemon thread, once; return it."""
    global _reactor_thread
    from twisted.internet import reactor

    with _reactor_thread_lock:
        if _reactor_thread is None:
            if reactor.running:
                raise RuntimeError(
                    "The reactor is already running in another thread"
                )
            started = threading.Event()
            reactor.callWhenRunning(started.set)
            _reactor_thread = threading.Thread(
                target=reactor.run,
                kwargs={"installSignalHandlers": False},
                name="lpbuildd-reactor",
                daemon=True,
            )
            _reactor_thread.start()
            if not started.wait(30):
                raise RuntimeError("The reactor did not start")
    return reactor


class BuilderServer:
    """A builder serving XML-RPC and its file cache over HTTP.

    In-process use (tests, tools)::

        server = BuilderServer(cache_dir)
        server.start()          # listens on 127.0.0.1, a free port
        server.url              # "http://127.0.0.1:<port>"
        server.builder.startBuild("1-1")
        ...
        server.stop()

    `start` and `stop` are blocking and may be called from any thread
    but the reactor's; they can be repeated in one process.
    """

    def __init__(self, cache_dir, host="127.0.0.1", port=0, arch="amd64"):
        self.builder = Builder(cache_dir, arch=arch)
        self.site = makeSite(self.builder)
        self.host = host
        self.port = port
        self.url = None
        self._listening = None
        self._factory = None

    @property
    def filecache(self):
        """The `FileCacheResource` (for its request counters)."""
        return self.site.resource.filecache

    def listen(self, reactor):
        """Start listening on `reactor`, from its own thread; return the URL.

        `start` does this from any other thread.
        """
        if self._listening is not None:
            raise RuntimeError("BuilderServer already started")
        self._factory = WrappingFactory(self.site)
        self._listening = reactor.listenTCP(
            self.port, self._factory, interface=self.host
        )
        self.url = "http://%s:%d" % (
            self.host,
            self._listening.getHost().port,
        )
        return self.url

    def start(self):
        """Start listening; return the URL."""
        reactor = ensureReactorThread()
        return blockingCallFromThread(reactor, self.listen, reactor)

    def stopListening(self):
        """Stop listening and drop open connections, from the reactor's
        own thread; return a Deferred.  `stop` does this from any other
        thread."""
        if self._listening is None:
            return succeed(None)
        listening, factory = self._listening, self._factory
        self._listening = self._factory = self.url = None
        d = maybeDeferred(listening.stopListening)
        for protocol in list(factory.protocols):
            protocol.transport.abortConnection()
        return d

    def stop(self):
        """Stop listening and drop open connections."""
        if self._listening is None:
            return
        from twisted.internet import reactor

        blockingCallFromThread(reactor, self.stopListening)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()


def main(argv=None):
    """Run a builder in the foreground until SIGTERM or SIGINT.

    The first line written to stdout is ``LISTENING <url>``.  With
    ``--waiting-file``, the builder starts in WAITING state with those
    files in its filemap (build id ``--build-id``).
    """
    parser = argparse.ArgumentParser(prog="python -m lpbuildd.server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cache", required=True, help="file cache dir")
    parser.add_argument("--arch", default="amd64")
    parser.add_argument("--build-id", default="1-1")
    parser.add_argument(
        "--build-status",
        default="OK",
        help="final build status with --waiting-file (default OK)",
    )
    parser.add_argument(
        "--waiting-file", action="append", default=[], metavar="PATH"
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    from twisted.internet import reactor

    os.makedirs(args.cache, exist_ok=True)
    builder_server = BuilderServer(
        args.cache, host=args.host, port=args.port, arch=args.arch
    )
    if args.waiting_file:
        builder = builder_server.builder
        builder.startBuild(args.build_id)
        for path in args.waiting_file:
            builder.addWaitingFile(path)
        builder.buildComplete(args.build_status)
    if args.verbose:
        log.startLogging(sys.stderr)
    url = builder_server.listen(reactor)
    print(f"LISTENING {url}", flush=True)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
