# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Download subprocess support for the build farm master.

`BuilderWorker.getFile` runs `DownloadCommand` in a pool of `RequestProcess`
children (ampoule), so that neither the transfer nor the hashing of a
file ever runs on the master's reactor.  To keep the children small this
module imports nothing from the rest of Launchpad.

Differences from Launchpad's `DownloadCommand`:

- the child computes the file's SHA-1 (in a helper thread) and sha256
  while writing it,
  refuses it if the SHA-1 is not the one asked for (`DownloadCorrupt`),
  and returns the sha256 and size, so the master never reads the file
  again to learn them;
- a body shorter than its Content-Length is refused (`DownloadIncomplete`);
- each failure is a distinct AMP error, so that the master can tell the
  ones worth another attempt (connection errors, timeouts, 5xx, short
  bodies, SHA-1 mismatches) from those that are not (404, other
  statuses, local write errors); Launchpad maps every `RequestException`
  to one error;
- the target directory must exist (Launchpad creates it), and the file
  is fsynced and made world-readable (0644) before it is renamed into
  place.
"""

__all__ = [
    "DownloadCommand",
    "DownloadConnectionError",
    "DownloadCorrupt",
    "DownloadIncomplete",
    "DownloadNotFound",
    "DownloadRefused",
    "DownloadServerError",
    "DownloadTimeout",
    "DownloadWriteError",
    "RequestProcess",
]

import hashlib
import os
import tempfile

from ampoule.child import AMPChild
from requests import RequestException, Session, Timeout
from requests.exceptions import ChunkedEncodingError
from twisted.protocols import amp

from lp.services.hashing import HashInThread

# Downloads are read and written in chunks of this size.
CHUNK_SIZE = 1024 * 1024


class DownloadConnectionError(Exception):
    """The builder could not be reached, or the connection broke."""


class DownloadTimeout(Exception):
    """The builder did not connect or send data in time."""


class DownloadServerError(Exception):
    """The builder answered with a 5xx status ("HTTP <status>")."""


class DownloadIncomplete(Exception):
    """The body was shorter than its Content-Length."""


class DownloadCorrupt(Exception):
    """The content does not have the SHA-1 that was asked for."""


class DownloadNotFound(Exception):
    """The builder has no such file (404)."""


class DownloadRefused(Exception):
    """Any other unusable answer (status, headers)."""


class DownloadWriteError(Exception):
    """The file could not be written locally."""


class DownloadCommand(amp.Command):
    """Fetch ``file_url`` into ``path_to_write``.

    ``sha1``, when not empty, is checked before the file is put in
    place.  The answer gives the file's ``sha256`` (hex) and ``size``.
    """

    arguments = [
        (b"file_url", amp.Unicode()),
        (b"path_to_write", amp.Unicode()),
        (b"timeout", amp.Float()),
        (b"sha1", amp.Unicode()),
    ]
    response = [
        (b"sha256", amp.Unicode()),
        (b"size", amp.Integer()),
    ]
    errors = {
        DownloadConnectionError: b"CONNECTION_ERROR",
        DownloadTimeout: b"TIMEOUT",
        DownloadServerError: b"SERVER_ERROR",
        DownloadIncomplete: b"INCOMPLETE",
        DownloadCorrupt: b"CORRUPT",
        DownloadNotFound: b"NOT_FOUND",
        DownloadRefused: b"REFUSED",
        DownloadWriteError: b"WRITE_ERROR",
    }


def _one_line(error):
    return " ".join(str(error).split())


def _is_timeout(error):
    """Whether a requests error was caused by a timeout."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (Timeout, TimeoutError)):
            return True
        if type(error).__name__.endswith("TimeoutError"):
            # urllib3's ReadTimeoutError, wrapped by requests.
            return True
        args = getattr(error, "args", ())
        error = args[0] if args and isinstance(args[0], Exception) else None
    return False


def _stream(response, out):
    """Copy the body to ``out``; return (sha1, sha256, size)."""
    sha1 = HashInThread("sha1")
    sha256 = hashlib.sha256()
    size = 0
    try:
        for chunk in response.iter_content(CHUNK_SIZE):
            sha1.update(chunk)
            sha256.update(chunk)
            out.write(chunk)
            size += len(chunk)
        sha1.wait()
    except ChunkedEncodingError as e:
        raise DownloadIncomplete(f"body cut short: {_one_line(e)}") from e
    except RequestException as e:
        if _is_timeout(e):
            raise DownloadTimeout(_one_line(e)) from e
        raise DownloadConnectionError(_one_line(e)) from e
    finally:
        sha1.close()
    return sha1.hexdigest(), sha256.hexdigest(), size


def _content_length(response):
    length = response.headers.get("Content-Length")
    if length is None:
        return None
    try:
        return int(length)
    except ValueError:
        raise DownloadRefused(f"bad Content-Length {length[:40]!r}") from None


def download(session, file_url, path_to_write, timeout, sha1=None):
    """Fetch one file; see `DownloadCommand`.  Return (sha256, size)."""
    try:
        response = session.get(
            file_url,
            stream=True,
            timeout=timeout,
            headers={"Accept-Encoding": "identity"},
        )
    except RequestException as e:
        if _is_timeout(e):
            raise DownloadTimeout(_one_line(e)) from e
        raise DownloadConnectionError(_one_line(e)) from e
    with response:
        if response.status_code == 404:
            raise DownloadNotFound("HTTP 404")
        if response.status_code >= 500:
            raise DownloadServerError(f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise DownloadRefused(f"HTTP {response.status_code}")
        length = _content_length(response)
        directory, name = os.path.split(os.path.abspath(path_to_write))
        try:
            fd, tmppath = tempfile.mkstemp(
                dir=directory, prefix=f".{name}.", suffix=".part"
            )
        except OSError as e:
            raise DownloadWriteError(_one_line(e)) from e
        try:
            try:
                with os.fdopen(fd, "wb") as out:
                    actual_sha1, sha256, size = _stream(response, out)
                    # On disk before it is handed over: the librarian
                    # takes it as it is, and its own fsync is then
                    # cheap; done here, it overlaps other downloads.
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as e:
                raise DownloadWriteError(_one_line(e)) from e
            if length is not None and size != length:
                raise DownloadIncomplete(f"received {size} of {length} bytes")
            if sha1 and actual_sha1 != sha1:
                raise DownloadCorrupt(
                    f"received content has SHA-1 {actual_sha1}"
                )
            try:
                os.chmod(tmppath, 0o644)
                os.replace(tmppath, path_to_write)
            except OSError as e:
                raise DownloadWriteError(_one_line(e)) from e
        finally:
            if os.path.exists(tmppath):
                os.unlink(tmppath)
    return sha256, size


class RequestProcess(AMPChild):
    """A subprocess that downloads files for the build farm master."""

    @DownloadCommand.responder
    def downloadCommand(self, file_url, path_to_write, timeout, sha1):
        # A session per download, as Launchpad does: no connection is
        # kept open to a builder between downloads.
        with Session() as session:
            session.trust_env = False
            sha256, size = download(
                session, file_url, path_to_write, timeout, sha1=sha1 or None
            )
        return {"sha256": sha256, "size": size}
