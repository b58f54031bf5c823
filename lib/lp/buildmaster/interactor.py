# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Talking to builders: `BuilderWorker`.

`BuilderWorker` is the build farm master's client for one builder: the
XML-RPC interface at ``<url>/rpc`` (``status``, ``echo``, ``info``,
``ensurepresent``, ``abort``, ``clean``) and file downloads from
``<url>/filecache/<sha1>``.

Deviation from Launchpad: Launchpad's `BuilderWorker` is Twisted-based
and returns Deferreds.  This one is synchronous (requests, plus a thread
pool in `getFiles`); the method names and arguments are the same, so
callers change only in not waiting on Deferreds.  `resume`, `build` and
`sendFileToWorker` are not implemented.

Downloads are robust where Launchpad's are not:

- every file is streamed to a temporary file beside its target and its
  SHA-1 checked against the name it was asked for; only then is it
  renamed into place, so a failed download leaves nothing behind;
- connection errors, timeouts, 5xx responses, short bodies and SHA-1
  mismatches are retried with exponential backoff (`RetryPolicy`); a
  404 is final at once (`BuilderFileNotFound`);
- `getFiles` fetches with bounded concurrency.

Errors are typed; all derive from `BuilderWorkerError`.  XML-RPC faults
raised by the builder itself (e.g. ``clean`` when not WAITING) come
through as `xmlrpc.client.Fault`, as in Launchpad.
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
    "RetryPolicy",
]

import hashlib
import os
import re
import shutil
import tempfile
import time
import xmlrpc.client
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

# Seconds to wait for a connection, and between bytes of a response.
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_TIMEOUT = 60

DEFAULT_MAX_CONCURRENCY = 4

# Downloads are read and written in chunks of this size.
CHUNK_SIZE = 1024 * 1024

_SHA1_RE = re.compile(r"[0-9a-f]{40}")


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
        self, attempts=5, initial_delay=1.0, factor=2.0, max_delay=30
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


def _checkSha1(sha1):
    if not isinstance(sha1, str) or not _SHA1_RE.fullmatch(sha1):
        raise ValueError(f"Not a SHA-1: {sha1!r}")


def _isReadTimeout(error):
    while error is not None:
        if isinstance(
            error, (requests.Timeout, urllib3.exceptions.TimeoutError)
        ):
            return True
        args = getattr(error, "args", ())
        error = args[0] if args and isinstance(args[0], Exception) else None
    return False


class BuilderWorker:
    """Client for one builder's XML-RPC interface and file cache.

    Thread-safe: `getFiles` calls `getFile` from several threads.
    """

    def __init__(
        self,
        url,
        vm_host=None,
        timeout=DEFAULT_TIMEOUT,
        connect_timeout=DEFAULT_CONNECT_TIMEOUT,
        retry_policy=None,
        max_concurrency=DEFAULT_MAX_CONCURRENCY,
        sleep=time.sleep,
    ):
        """Create a client for the builder at `url`.

        :param url: the builder's base URL, e.g. "http://host:8221/".
        :param vm_host: the builder's VM host (recorded; `resume` is not
            implemented).
        :param timeout: seconds to wait for each read from the builder.
        :param connect_timeout: seconds to wait for a connection.
        :param retry_policy: a `RetryPolicy` for downloads.
        :param max_concurrency: default bound for `getFiles`.
        :param sleep: called with the backoff delay between attempts.
        """
        self.url = url.rstrip("/")
        self._vm_host = vm_host
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retry_policy = retry_policy or RetryPolicy()
        self.max_concurrency = max_concurrency
        self._sleep = sleep
        self._rpc_url = self.url + "/rpc"
        self._file_cache_url = self.url + "/filecache"
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_maxsize=max(10, max_concurrency))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    @classmethod
    def makeBuilderWorker(
        cls,
        builder_url,
        vm_host=None,
        timeout=DEFAULT_TIMEOUT,
        reactor=None,
        pool=None,
        process_pool=None,
        **kwargs,
    ):
        """Create a `BuilderWorker` (Launchpad's factory signature).

        `reactor`, `pool` and `process_pool` are accepted for
        compatibility and ignored.  Other keyword arguments go to the
        constructor.
        """
        return cls(builder_url, vm_host=vm_host, timeout=timeout, **kwargs)

    def close(self):
        """Close pooled connections."""
        self._session.close()

    # XML-RPC.

    def _call(self, method, *args):
        body = xmlrpc.client.dumps(args, method, allow_none=True)
        try:
            response = self._session.post(
                self._rpc_url,
                data=body.encode("UTF-8"),
                headers={"Content-Type": "text/xml"},
                timeout=(self.connect_timeout, self.timeout),
            )
        except requests.Timeout as e:
            raise BuilderTimeout(self._rpc_url, str(e)) from e
        except requests.RequestException as e:
            raise BuilderConnectionError(self._rpc_url, str(e)) from e
        with response:
            if response.status_code >= 500:
                raise BuilderServerError(self._rpc_url, response.status_code)
            if response.status_code != 200:
                raise BuilderConnectionError(
                    self._rpc_url, f"HTTP {response.status_code}"
                )
            try:
                (result,), _ = xmlrpc.client.loads(response.content)
            except xmlrpc.client.Fault:
                raise
            except Exception as e:
                raise BuilderConnectionError(
                    self._rpc_url, f"Bad XML-RPC response: {e}"
                ) from e
        return result

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
        return self._call("ensurepresent", sha1sum, url, username, password)

    # File cache.

    def getURL(self, sha1):
        """Return the URL of a file in the builder's file cache."""
        return f"{self._file_cache_url}/{sha1}"

    def _fetchOnce(self, sha1, file_url, out):
        """Stream one attempt at `file_url` into `out` and check it."""
        try:
            response = self._session.get(
                file_url,
                stream=True,
                headers={"Accept-Encoding": "identity"},
                timeout=(self.connect_timeout, self.timeout),
            )
        except requests.Timeout as e:
            raise BuilderTimeout(file_url, str(e)) from e
        except requests.RequestException as e:
            raise BuilderConnectionError(file_url, str(e)) from e
        with response:
            if response.status_code == 404:
                raise BuilderFileNotFound(
                    file_url, f"builder has no file {sha1}", sha1=sha1
                )
            if response.status_code >= 500:
                raise BuilderServerError(file_url, response.status_code)
            if response.status_code != 200:
                raise CannotFetchFile(
                    file_url, f"HTTP {response.status_code}", sha1=sha1
                )
            length = response.headers.get("Content-Length")
            if length is not None:
                try:
                    length = int(length)
                except ValueError:
                    raise CannotFetchFile(
                        file_url,
                        f"bad Content-Length {length[:40]!r}",
                        sha1=sha1,
                    ) from None
            digest = hashlib.sha1()
            received = 0
            try:
                for chunk in response.iter_content(CHUNK_SIZE):
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
            except requests.exceptions.ChunkedEncodingError as e:
                raise BuilderFileIncomplete(
                    file_url, f"body cut short: {e}", sha1=sha1
                ) from e
            except requests.RequestException as e:
                if _isReadTimeout(e):
                    raise BuilderTimeout(file_url, str(e)) from e
                raise BuilderConnectionError(file_url, str(e)) from e
        if length is not None and received != length:
            raise BuilderFileIncomplete(
                file_url,
                f"received {received} of {length} bytes",
                sha1=sha1,
            )
        if digest.hexdigest() != sha1:
            raise BuilderFileCorrupt(
                file_url,
                f"received content has SHA-1 {digest.hexdigest()}",
                sha1=sha1,
            )

    def _withRetries(self, file_url, attempt, logger):
        delays = self.retry_policy.delays()
        for number in range(1, self.retry_policy.attempts + 1):
            try:
                return attempt()
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
                self._sleep(delay)

    def getFile(self, sha_sum, file_to_write, logger=None):
        """Fetch a file from the builder's cache, checking its SHA-1.

        :param sha_sum: the SHA-1 of the file.
        :param file_to_write: a path, or a binary file object.  A path
            is written atomically: the file is downloaded beside it
            under a temporary name and renamed once verified; on failure
            nothing is left.  A file object only ever receives verified
            content (each attempt is spooled to a temporary file first).
        :param logger: optional `logging.Logger` for retries.
        :raises BuilderFileNotFound: at once, on a 404.
        :raises BuilderWorkerError: the last error once retries are spent.
        """
        _checkSha1(sha_sum)
        file_url = self.getURL(sha_sum)
        if isinstance(file_to_write, (str, os.PathLike)):
            path = os.fspath(file_to_write)

            def attempt():
                self._fetchToPath(sha_sum, file_url, path)

        else:

            def attempt():
                self._fetchToFile(sha_sum, file_url, file_to_write)

        self._withRetries(file_url, attempt, logger)

    def _fetchToPath(self, sha1, file_url, path):
        directory, name = os.path.split(os.path.abspath(path))
        fd, tmppath = tempfile.mkstemp(
            dir=directory, prefix=f".{name}.", suffix=".part"
        )
        try:
            with os.fdopen(fd, "wb") as out:
                self._fetchOnce(sha1, file_url, out)
            os.chmod(tmppath, 0o644)
            os.replace(tmppath, path)
        except BaseException:
            try:
                os.unlink(tmppath)
            except FileNotFoundError:
                pass
            raise

    def _fetchToFile(self, sha1, file_url, file_obj):
        # Spool beside the target if it is a named file, else in $TMPDIR.
        name = getattr(file_obj, "name", None)
        directory = None
        if isinstance(name, str) and os.path.isdir(os.path.dirname(name)):
            directory = os.path.dirname(name)
        with tempfile.TemporaryFile(dir=directory) as spool:
            self._fetchOnce(sha1, file_url, spool)
            spool.seek(0)
            shutil.copyfileobj(spool, file_obj, CHUNK_SIZE)

    def getFiles(self, files, logger=None, max_concurrency=None):
        """Fetch several files, at most `max_concurrency` at a time.

        :param files: a sequence of (sha1, path or file object) pairs.
        :return: the list of targets, once all have been fetched.
        :raises BuilderWorkerError: once any download has failed,
            downloads not yet started are cancelled and those in progress
            finish; then the failure of the earliest failed entry in
            `files` is raised.  Files already fetched are left in place
            (the caller owns the target directory).
        """
        files = list(files)
        if not files:
            return []
        for sha1, _ in files:
            _checkSha1(sha1)
        paths = [
            os.path.abspath(os.fspath(target))
            for _, target in files
            if isinstance(target, (str, os.PathLike))
        ]
        if len(set(paths)) != len(paths):
            raise ValueError("The same target path is given more than once")
        limit = max_concurrency or self.max_concurrency
        with ThreadPoolExecutor(
            max_workers=min(limit, len(files)),
            thread_name_prefix="getFiles",
        ) as executor:
            futures = [
                executor.submit(self.getFile, sha1, target, logger)
                for sha1, target in files
            ]
            done, not_done = wait(futures, return_when=FIRST_EXCEPTION)
            for future in not_done:
                future.cancel()
        for future in futures:
            if not future.cancelled() and future.exception() is not None:
                raise future.exception()
        return [target for _, target in files]
