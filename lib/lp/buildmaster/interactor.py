# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Talking to builders: `BuilderWorker`.

`BuilderWorker` is the build farm master's client for one builder: the
XML-RPC interface at ``<url>/rpc`` (``status``, ``echo``, ``info``,
``ensurepresent``, ``abort``, ``clean``, over `twisted.web.xmlrpc`) and
file downloads from ``<url>/filecache/<sha1>``.  Every method returns a
Deferred, as in Launchpad.  Downloads run in a pool of ampoule
subprocesses (`lp.buildmaster.downloader`), so the reactor neither
transfers nor hashes file content.

Differences from Launchpad's `BuilderWorker`:

- `getFile` checks the SHA-1 of what arrives against the one asked for
  while downloading (Launchpad trusts the builder), and fires with a
  `DownloadResult` giving the file's sha256 and size as computed by the
  download process, so later stages need not read the file again;
- a 404 fails at once (`BuilderFileNotFound`); connection errors,
  timeouts, 5xx responses, short bodies and SHA-1 mismatches are retried
  with exponential backoff (`RetryPolicy`, ``download_attempts`` in all;
  Launchpad retries too, ``config.builddmaster.download_attempts`` times
  in all, but at once and on any error, a 404 included);
- `getFiles` fetches at most `max_concurrency` files at once and, after
  a failure, starts no new download (Launchpad starts them all at once
  and only the process pool bounds them);
- a file is written to a temporary name beside its target and renamed
  into place only once verified (Launchpad renames whatever arrived),
  and nothing is left on failure;
- errors are typed, all `BuilderWorkerError`s with one-line messages
  (Launchpad lets Twisted's and requests' errors through); XML-RPC
  faults raised by the builder itself (e.g. ``clean`` when not WAITING)
  still come through as `xmlrpc.client.Fault`;
- the default process pool is started on the first download, not when
  the worker is created.

`resume`, `build` and `sendFileToWorker` are not implemented.
"""

__all__ = [
    "BuilderConnectionError",
    "BuilderFileCorrupt",
    "BuilderFileIncomplete",
    "BuilderFileNotFound",
    "BuilderServerError",
    "BuilderTimeout",
    "BuilderWorker",
    "BuilderWorkerError",
    "CannotFetchFile",
    "DownloadResult",
    "RetryPolicy",
    "WORKER_LOG_FILENAME",
    "default_process_pool",
    "make_download_process_pool",
    "shut_down_default_process_pool",
]

import os
import re
from collections import namedtuple
from xml.parsers.expat import ExpatError

from ampoule.main import ProcessStarter
from ampoule.pool import ProcessPool
from twisted.internet import defer
from twisted.internet import error as twisted_error
from twisted.internet import reactor as default_reactor
from twisted.internet.interfaces import IReactorCore
from twisted.internet.task import deferLater
from twisted.protocols import amp
from twisted.web import error as web_error
from twisted.web import xmlrpc

from lp.buildmaster.downloader import (
    DownloadCommand,
    DownloadConnectionError,
    DownloadCorrupt,
    DownloadIncomplete,
    DownloadNotFound,
    DownloadRefused,
    DownloadServerError,
    DownloadTimeout,
    DownloadWriteError,
    RequestProcess,
)
from lp.services.twistedsupport import cancel_on_timeout

# The name under which launchpad-buildd serves its build log.
WORKER_LOG_FILENAME = "buildlog"

# Seconds to wait for a connection, and between bytes of a response.
DEFAULT_TIMEOUT = 60

# Downloads: attempts in all, and how many files `getFiles` fetches at
# once (also the default size of the process pool).
DOWNLOAD_ATTEMPTS = 5
DOWNLOAD_CONNECTIONS = 4

_SHA1_RE = re.compile(r"[0-9a-f]{40}")
_HTTP_STATUS_RE = re.compile(r"HTTP (\d{3})")

# The directory holding the "lp" package, for the download processes.
_LIB_DIR = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)


class BuilderWorkerError(Exception):
    """Something went wrong talking to a builder."""


class BuilderConnectionError(BuilderWorkerError):
    """The builder could not be reached or did not answer properly."""

    def __init__(self, url, error_info):
        super().__init__(f"{url}: {error_info}")
        self.url = url
        self.error_info = error_info


class BuilderTimeout(BuilderConnectionError):
    """The builder did not connect or answer in time."""


class BuilderServerError(BuilderConnectionError):
    """The builder answered with a 5xx status."""

    def __init__(self, url, status):
        super().__init__(url, f"HTTP {status}")
        self.status = status


class CannotFetchFile(BuilderWorkerError):
    """A file could not be fetched from the builder's file cache."""

    def __init__(self, file_url, error_info, sha1=None):
        super().__init__(f"{file_url}: {error_info}")
        self.file_url = file_url
        self.error_info = error_info
        self.sha1 = sha1


class BuilderFileNotFound(CannotFetchFile):
    """The builder has no file with this SHA-1 (not retried)."""


class BuilderFileCorrupt(CannotFetchFile):
    """What arrived does not have the SHA-1 that was asked for."""


class BuilderFileIncomplete(CannotFetchFile):
    """The body was shorter than its Content-Length."""


# Errors that another attempt may cure.
_RETRYABLE = (
    BuilderConnectionError,
    BuilderFileCorrupt,
    BuilderFileIncomplete,
)


class RetryPolicy:
    """How often and how patiently to retry a download.

    :param attempts: total number of attempts (1: no retries).
    :param initial_delay: seconds before the second attempt.
    :param factor: each further delay is this much longer...
    :param max_delay: ...up to this many seconds.
    """

    def __init__(
        self,
        attempts=DOWNLOAD_ATTEMPTS,
        initial_delay=1.0,
        factor=2.0,
        max_delay=30,
    ):
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.attempts = attempts
        self.initial_delay = initial_delay
        self.factor = factor
        self.max_delay = max_delay

    def delays(self):
        """Return the delays before attempts 2, 3, ..."""
        delay = self.initial_delay
        result = []
        for _ in range(self.attempts - 1):
            result.append(min(delay, self.max_delay))
            delay *= self.factor
        return result


DownloadResult = namedtuple(
    "DownloadResult", ("path", "sha1", "sha256", "size")
)
DownloadResult.__doc__ = """A file fetched by `BuilderWorker.getFile`.

``sha256`` (hex) and ``size`` were computed by the download process
while it wrote the file at ``path``; ``sha1`` is the name it was asked
for (checked unless it is `WORKER_LOG_FILENAME`).
"""


class QuietQueryFactory(xmlrpc.QueryFactory):
    """XML-RPC client factory that does not log every connection.

    A non-200 answer fails with `twisted.web.error.Error` (which has the
    status) rather than Twisted's bare ``ValueError(status, message)``.
    """

    noisy = False

    def badStatus(self, status, message):
        if self.deferred is not None:
            d, self.deferred = self.deferred, None
            d.errback(web_error.Error(status, message))


def make_download_process_pool(**kwargs):
    """Make a pool of processes for downloading files.

    Keyword arguments go to `ampoule.pool.ProcessPool` (``min``,
    ``max``, ``maxIdle``...).
    """
    env = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": _LIB_DIR}
    starter = ProcessStarter(env=env)
    kwargs.setdefault("min", 0)
    kwargs.setdefault("max", DOWNLOAD_CONNECTIONS)
    # ampoule stops children idle for 20 seconds by default, close to a
    # scan interval; keep them for five minutes, as Launchpad does.
    kwargs.setdefault("maxIdle", 300)
    return ProcessPool(RequestProcess, starter=starter, **kwargs)


_default_process_pool = None
_default_process_pool_shutdown = None


def default_process_pool(reactor=None):
    """The process pool shared by workers not given one; started once."""
    global _default_process_pool, _default_process_pool_shutdown
    if reactor is None:
        reactor = default_reactor
    if _default_process_pool is None:
        _default_process_pool = make_download_process_pool()
        _default_process_pool.start()
        if IReactorCore.providedBy(reactor):
            shutdown_id = reactor.addSystemEventTrigger(
                "during", "shutdown", _default_process_pool.stop
            )
            _default_process_pool_shutdown = (reactor, shutdown_id)
    return _default_process_pool


@defer.inlineCallbacks
def shut_down_default_process_pool():
    """Stop the default process pool, if it was started."""
    global _default_process_pool, _default_process_pool_shutdown
    if _default_process_pool is not None:
        pool, _default_process_pool = _default_process_pool, None
        yield pool.stop()
    if _default_process_pool_shutdown is not None:
        reactor, shutdown_id = _default_process_pool_shutdown
        _default_process_pool_shutdown = None
        reactor.removeSystemEventTrigger(shutdown_id)


def _description(failure):
    """The one-line text of an error sent by a download process."""
    args = failure.value.args
    text = args[0] if args else ""
    if isinstance(text, bytes):
        text = text.decode("UTF-8", "replace")
    return " ".join(str(text).split())


def _server_error(file_url, text, sha1):
    match = _HTTP_STATUS_RE.search(text)
    return BuilderServerError(file_url, int(match.group(1)) if match else 500)


# How the download process's errors become `BuilderWorkerError`s:
# error type -> f(file_url, description, sha1).
_DOWNLOAD_ERRORS = {
    DownloadConnectionError: (
        lambda url, text, sha1: BuilderConnectionError(url, text)
    ),
    DownloadTimeout: lambda url, text, sha1: BuilderTimeout(url, text),
    DownloadServerError: _server_error,
    DownloadIncomplete: (
        lambda url, text, sha1: BuilderFileIncomplete(url, text, sha1=sha1)
    ),
    DownloadCorrupt: (
        lambda url, text, sha1: BuilderFileCorrupt(url, text, sha1=sha1)
    ),
    DownloadNotFound: (
        lambda url, text, sha1: BuilderFileNotFound(
            url, f"builder has no file {sha1}", sha1=sha1
        )
    ),
    DownloadRefused: (
        lambda url, text, sha1: CannotFetchFile(url, text, sha1=sha1)
    ),
    DownloadWriteError: (
        lambda url, text, sha1: CannotFetchFile(
            url, f"cannot write: {text}", sha1=sha1
        )
    ),
    amp.UnknownRemoteError: (
        lambda url, text, sha1: CannotFetchFile(
            url, f"download process failed: {text}", sha1=sha1
        )
    ),
}


class _NotStarted(Exception):
    """A download `getFiles` did not start because another failed."""


class BuilderWorker:
    """Client for one builder's XML-RPC interface and file cache.

    :ivar url: The URL of the builder; the XML-RPC resource and the file
        cache live beneath it.
    """

    def __init__(
        self,
        proxy,
        builder_url,
        vm_host,
        timeout,
        reactor,
        pool=None,
        process_pool=None,
        retry_policy=None,
        max_concurrency=DOWNLOAD_CONNECTIONS,
    ):
        """Initialize a BuilderWorker.

        :param proxy: An XML-RPC proxy implementing ``callRemote``; it
            must support passing and returning None.
        :param builder_url: The URL of the builder.
        :param vm_host: The VM host (recorded; `resume` is not
            implemented).
        :param timeout: Seconds to wait for an XML-RPC answer, and for
            each read of a download.
        :param reactor: The reactor (the global one if None).
        :param pool: An HTTP connection pool, accepted for Launchpad's
            signature; XML-RPC calls make their own connections.
        :param process_pool: The ampoule pool that downloads run in (the
            shared `default_process_pool` if None).
        :param retry_policy: A `RetryPolicy` for downloads.
        :param max_concurrency: Default bound for `getFiles`.
        """
        self.url = builder_url.rstrip("/")
        self._vm_host = vm_host
        self._file_cache_url = self.url + "/filecache"
        self._server = proxy
        self.timeout = timeout
        if reactor is None:
            reactor = default_reactor
        self.reactor = reactor
        self.pool = pool
        self._process_pool = process_pool
        self.retry_policy = retry_policy or RetryPolicy()
        self.max_concurrency = max_concurrency

    @classmethod
    def makeBuilderWorker(
        cls,
        builder_url,
        vm_host,
        timeout,
        reactor=None,
        proxy=None,
        pool=None,
        process_pool=None,
        **kwargs,
    ):
        """Create and return a `BuilderWorker`.

        :param builder_url: The URL of the builder, e.g.
            http://localhost:8221
        :param vm_host: The VM host of a virtual builder.
        :param reactor: Used by tests to override the Twisted reactor.
        :param proxy: Used by tests to override the `xmlrpc.Proxy`.
        :param pool: Used by tests to override the HTTP connection pool.
        :param process_pool: Used by tests to override the process pool.
        Other keyword arguments (``retry_policy``, ``max_concurrency``)
        go to the constructor.
        """
        rpc_url = builder_url.rstrip("/") + "/rpc"
        if proxy is None:
            proxy = xmlrpc.Proxy(
                rpc_url.encode("UTF-8"),
                allowNone=True,
                connectTimeout=timeout,
                reactor=reactor if reactor is not None else default_reactor,
            )
            proxy.queryFactory = QuietQueryFactory
        return cls(
            proxy,
            builder_url,
            vm_host,
            timeout,
            reactor,
            pool=pool,
            process_pool=process_pool,
            **kwargs,
        )

    @property
    def process_pool(self):
        """The download process pool (the default one is started lazily)."""
        if self._process_pool is None:
            self._process_pool = default_process_pool(reactor=self.reactor)
        return self._process_pool

    # XML-RPC.

    def _translateRPCError(self, failure):
        rpc_url = self.url + "/rpc"
        failure.trap(
            defer.CancelledError,
            twisted_error.ConnectError,
            twisted_error.ConnectionClosed,
            web_error.Error,
            ExpatError,
        )
        if failure.check(defer.CancelledError, twisted_error.TimeoutError):
            raise BuilderTimeout(
                rpc_url, f"no answer within {self.timeout} seconds"
            )
        if failure.check(web_error.Error):
            status = int(failure.value.status)
            if status >= 500:
                raise BuilderServerError(rpc_url, status)
            raise BuilderConnectionError(rpc_url, f"HTTP {status}")
        if failure.check(ExpatError):
            raise BuilderConnectionError(
                rpc_url, f"bad XML-RPC response: {failure.value}"
            )
        raise BuilderConnectionError(
            rpc_url, " ".join(str(failure.value).split())
        )

    def _with_timeout(self, d, timeout=None):
        d = cancel_on_timeout(d, timeout or self.timeout, self.reactor)
        return d.addErrback(self._translateRPCError)

    def _call(self, method, *args, timeout=None):
        return self._with_timeout(
            self._server.callRemote(method, *args), timeout=timeout
        )

    def abort(self):
        """Abort the current build."""
        return self._call("abort")

    def clean(self):
        """Clean up the waiting files and reset the builder's state."""
        return self._call("clean")

    def echo(self, *args):
        """Echo the arguments back."""
        return self._call("echo", *args)

    def info(self):
        """Return the protocol version, architecture and managers."""
        return self._call("info")

    def status(self):
        """Return the status of the builder, as a dictionary.

        ``logtail``, when present, is an `xmlrpc.client.Binary`.
        """
        return self._call("status")

    def ensurepresent(self, sha1sum, url, username, password):
        """Ask the builder to fetch a file into its cache."""
        # The builder downloads synchronously: allow it longer.
        return self._call(
            "ensurepresent",
            sha1sum,
            url,
            username,
            password,
            timeout=self.timeout * 5,
        )

    # File cache.

    def getURL(self, sha1):
        """Return the URL of a file in the builder's file cache."""
        return f"{self._file_cache_url}/{sha1}"

    def _wait(self, delay):
        """A Deferred that fires after `delay` seconds (for backoff)."""
        return deferLater(self.reactor, delay, lambda: None)

    def _translateDownloadError(self, failure, file_url, sha1):
        error_type = failure.trap(*_DOWNLOAD_ERRORS)
        raise _DOWNLOAD_ERRORS[error_type](
            file_url, _description(failure), sha1
        )

    def _downloadOnce(self, sha1, file_url, path):
        d = self.process_pool.doWork(
            DownloadCommand,
            file_url=file_url,
            path_to_write=path,
            timeout=float(self.timeout),
            sha1="" if sha1 == WORKER_LOG_FILENAME else sha1,
        )
        return d.addErrback(self._translateDownloadError, file_url, sha1)

    @defer.inlineCallbacks
    def getFile(self, sha_sum, file_to_write, logger=None):
        """Fetch a file from the builder's cache, checking its SHA-1.

        :param sha_sum: The SHA-1 of the file, which is its name on the
            builder; or `WORKER_LOG_FILENAME` for launchpad-buildd's build
            log, which is not checked.
        :param file_to_write: The path to write the file to.  It is
            written atomically: downloaded beside it under a temporary
            name and renamed once verified; on failure nothing is left.
        :param logger: An optional logger, told of retries.
        :return: A Deferred firing with a `DownloadResult`.
        :raises BuilderFileNotFound: at once, on a 404.
        :raises BuilderWorkerError: the last error once retries are spent.
        """
        if sha_sum != WORKER_LOG_FILENAME and not (
            isinstance(sha_sum, str) and _SHA1_RE.fullmatch(sha_sum)
        ):
            raise ValueError(f"Not a SHA-1: {sha_sum!r}")
        if not isinstance(file_to_write, (str, os.PathLike)):
            raise TypeError(f"Not a path: {file_to_write!r}")
        path = os.path.abspath(os.fspath(file_to_write))
        file_url = self.getURL(sha_sum)
        delays = self.retry_policy.delays()
        for number in range(1, self.retry_policy.attempts + 1):
            try:
                answer = yield self._downloadOnce(sha_sum, file_url, path)
            except _RETRYABLE as e:
                if number == self.retry_policy.attempts:
                    e.attempts = number
                    raise
                delay = delays[number - 1]
                if logger is not None:
                    logger.warning(
                        "Attempt %d to fetch %s failed (%s); retrying in %ss",
                        number,
                        file_url,
                        e,
                        delay,
                    )
                yield self._wait(delay)
            else:
                if logger is not None:
                    logger.info("Grabbed %s", file_url)
                return DownloadResult(
                    path, sha_sum, answer["sha256"], answer["size"]
                )

    @defer.inlineCallbacks
    def getFiles(self, files, logger=None, max_concurrency=None):
        """Fetch several files, at most `max_concurrency` at a time.

        :param files: A sequence of (sha1, path to write) pairs.
        :param logger: An optional logger.
        :return: A Deferred firing with the `DownloadResult`s, in the
            order of `files`.
        :raises BuilderWorkerError: once any download has failed, no
            further download starts and those in progress finish; then
            the failure of the earliest failed entry in `files` is
            raised.  Files already fetched are left in place (the
            caller owns the target directory).
        """
        files = list(files)
        for sha1, _ in files:
            if not (isinstance(sha1, str) and _SHA1_RE.fullmatch(sha1)):
                raise ValueError(f"Not a SHA-1: {sha1!r}")
        paths = [os.path.abspath(os.fspath(target)) for _, target in files]
        if len(set(paths)) != len(paths):
            raise ValueError("The same target path is given more than once")
        if not files:
            return []
        semaphore = defer.DeferredSemaphore(
            max_concurrency or self.max_concurrency
        )
        failed = []

        def fetch(sha1, path):
            if failed:
                raise _NotStarted()
            d = self.getFile(sha1, path, logger=logger)
            return d.addErrback(note_failure)

        def note_failure(failure):
            failed.append(failure)
            return failure

        outcomes = yield defer.DeferredList(
            [semaphore.run(fetch, sha1, path) for sha1, path in files],
            consumeErrors=True,
        )
        for ok, value in outcomes:
            if not ok and not value.check(_NotStarted):
                value.raiseException()
        return [value for _, value in outcomes]
