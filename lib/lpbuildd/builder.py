# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The builder: build state and its XML-RPC interface.

This is the part of launchpad-buildd that the build farm master talks
to, with the same names and wire format:

- `Builder` holds the state machine (IDLE -> BUILDING -> WAITING ->
  IDLE), the build log and the waiting files (``{name: sha1}``).
- `XMLRPCBuilder` serves ``status``, ``echo``, ``info``,
  ``ensurepresent``, ``abort`` and ``clean`` (at ``/rpc``); it lives
  here, beside `Builder`, as in launchpad-buildd.

Serving them over HTTP, with the file cache, is `lpbuildd.server`'s
job (launchpad-buildd's ``buildd.tac``).

Deviation from launchpad-buildd: build managers (``build()``) are not
implemented; the build manager side drives the state through
`Builder.startBuild`, `Builder.addWaitingFile` and
`Builder.buildComplete`.
"""

__all__ = [
    "BuildStatus",
    "Builder",
    "BuilderStatus",
    "XMLRPCBuilder",
]

import hashlib
import http.client
import os
import threading
import urllib.request
from xmlrpc.client import Binary

from twisted.internet.threads import deferToThread
from twisted.web import xmlrpc

from lpbuildd.filecache import CHUNK_SIZE, FileCache, is_valid_sha1

PROTOCOL_VERSION = "1.0"

# How much of the end of the build log `status` returns.
LOG_TAIL_SIZE = 2048


class BuilderStatus:
    """Status values for the builder, as reported over XML-RPC."""

    IDLE = "BuilderStatus.IDLE"
    BUILDING = "BuilderStatus.BUILDING"
    WAITING = "BuilderStatus.WAITING"
    ABORTING = "BuilderStatus.ABORTING"

    UNKNOWNSUM = "BuilderStatus.UNKNOWNSUM"
    UNKNOWNBUILDER = "BuilderStatus.UNKNOWNBUILDER"


class BuildStatus:
    """Status values for builds themselves, as reported over XML-RPC."""

    OK = "BuildStatus.OK"
    DEPFAIL = "BuildStatus.DEPFAIL"
    GIVENBACK = "BuildStatus.GIVENBACK"
    PACKAGEFAIL = "BuildStatus.PACKAGEFAIL"
    CHROOTFAIL = "BuildStatus.CHROOTFAIL"
    BUILDERFAIL = "BuildStatus.BUILDERFAIL"
    ABORTED = "BuildStatus.ABORTED"


_BUILD_STATUSES = {
    value
    for name, value in vars(BuildStatus).items()
    if not name.startswith("_")
}


def _checkWaitingFileName(name):
    if (
        not isinstance(name, str)
        or not name
        or "/" in name
        or "\0" in name
        or name.startswith(".")
    ):
        raise ValueError(f"Unacceptable waiting file name: {name!r}")


class Builder:
    """The core of a builder: build state and waiting files.

    Safe to use from several threads: the XML-RPC interface runs in the
    reactor thread while a build manager files results from another.
    """

    def __init__(self, cache_dir, arch="amd64"):
        self.cache = FileCache(cache_dir)
        self.arch = arch
        self._lock = threading.RLock()
        self._log = None
        self._reset()

    def _reset(self):
        self.builderstatus = BuilderStatus.IDLE
        self.buildstatus = BuildStatus.OK
        self.build_id = None
        self.waitingfiles = {}
        self.builddependencies = ""
        self.build_log_sha1 = None
        self.manager = None
        if self._log is not None:
            self._log.close()
            self._log = None
        try:
            os.unlink(self._logPath())
        except FileNotFoundError:
            pass

    def _logPath(self):
        # Not a valid SHA-1, so never served from /filecache/.
        return os.path.join(self.cache.path, "buildlog")

    def getArch(self):
        """Return the architecture tag of the builder."""
        return self.arch

    def cachePath(self, sha1):
        """Return the path in the cache of the file with this SHA-1."""
        return self.cache.cachePath(sha1)

    def ensurePresent(self, sha1sum, url=None, username=None, password=None):
        """Ensure the file with this SHA-1 is in the cache.

        If it is not and `url` is given, fetch it from there (http or
        https only) and keep it if its SHA-1 matches.

        :return: (present, info).
        """
        if not is_valid_sha1(sha1sum):
            return False, f"Malformed SHA-1: {sha1sum!r}"
        if self.cache.contains(sha1sum):
            return True, "Cache" if url is not None else "No URL"
        if url is None:
            return False, "No URL"
        if not url.startswith(("http://", "https://")):
            return False, f"Unsupported URL: {url}"
        self.log(f"Fetching {sha1sum} by url {url}\n")
        if username:
            password_mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
            password_mgr.add_password(None, url, username, password)
            opener = urllib.request.build_opener(
                urllib.request.HTTPBasicAuthHandler(password_mgr)
            )
        else:
            opener = urllib.request.build_opener()
        tmp, tmppath = self.cache.newTemporaryFile()
        try:
            digest = hashlib.sha1()
            with tmp, opener.open(url, timeout=60) as response:
                for chunk in iter(lambda: response.read(CHUNK_SIZE), b""):
                    digest.update(chunk)
                    tmp.write(chunk)
            if digest.hexdigest() != sha1sum:
                info = "Digests did not match, removing again!"
            else:
                self.cache.commitTemporaryFile(tmppath, sha1sum)
                info = "Download"
        except (OSError, http.client.HTTPException, ValueError) as e:
            # OSError covers urllib's URLError and HTTPError, timeouts
            # and the cache's own I/O; HTTPException a broken response.
            info = f"Error accessing Librarian: {e}"
        finally:
            if os.path.exists(tmppath):
                os.unlink(tmppath)
        self.log(info + "\n")
        return self.cache.contains(sha1sum), info

    def storeFile(self, path, sha1=None):
        """Store the content of `path` in the file cache; return its SHA-1.

        See `FileCache.storeFile` for `sha1`.
        """
        return self.cache.storeFile(path, sha1=sha1)

    def addWaitingFile(self, path, name=None, sha1=None):
        """File `path` in the cache and report it as a waiting file.

        :param name: the name the master sees (default: the basename of
            `path`); it may not contain "/" or start with ".".
        :param sha1: the SHA-1 of the file, if already known.
        :return: the SHA-1.
        """
        if name is None:
            name = os.path.basename(path)
        _checkWaitingFileName(name)
        sha1 = self.storeFile(path, sha1=sha1)
        with self._lock:
            self.waitingfiles[name] = sha1
        return sha1

    def log(self, data):
        """Append `data` (bytes or str) to the build log.

        Harness only: text that cannot be UTF-8 (a tar member name that
        is not, kept with surrogateescape) is logged with backslash
        escapes; launchpad-buildd's ``Builder.log`` raises on it (the
        series' dockersave skips such members without logging them).
        """
        if isinstance(data, str):
            data = data.encode("UTF-8", "backslashreplace")
        with self._lock:
            if self._log is not None:
                self._log.write(data)
                self._log.flush()

    def getLogTail(self):
        """Return up to `LOG_TAIL_SIZE` bytes of the end of the log."""
        with self._lock:
            if self._log is None:
                return b""
            try:
                with open(self._logPath(), "rb") as rlog:
                    size = rlog.seek(0, os.SEEK_END)
                    rlog.seek(max(0, size - LOG_TAIL_SIZE))
                    return rlog.read(LOG_TAIL_SIZE)
            except OSError:
                return b""

    def _requireStatus(self, *statuses, action):
        if self.builderstatus not in statuses:
            names = "|".join(s.split(".")[-1] for s in statuses)
            raise ValueError(f"Builder is not {names} when {action}")

    def startBuild(self, build_id, manager=None):
        """Start building `build_id` (IDLE -> BUILDING)."""
        with self._lock:
            self._requireStatus(
                BuilderStatus.IDLE, action="asked to start building"
            )
            self.build_id = str(build_id)
            self.manager = manager
            self.buildstatus = BuildStatus.OK
            self.builderstatus = BuilderStatus.BUILDING
            self._log = open(self._logPath(), "wb")

    def _setBuildStatus(self, status, *allowed):
        with self._lock:
            self._requireStatus(
                *(allowed or (BuilderStatus.BUILDING,)),
                action=f"set to {status.split('.')[-1]}",
            )
            self.buildstatus = status

    def buildOK(self):
        """Mark the build as successful so far."""
        self._setBuildStatus(BuildStatus.OK)

    def buildFail(self):
        """The build failed (PACKAGEFAIL)."""
        self._setBuildStatus(BuildStatus.PACKAGEFAIL)

    def depFail(self, dependencies):
        """The build failed on missing dependencies."""
        with self._lock:
            self._setBuildStatus(BuildStatus.DEPFAIL)
            self.builddependencies = dependencies

    def chrootFail(self):
        """The build environment could not be set up."""
        self._setBuildStatus(BuildStatus.CHROOTFAIL)

    def giveBack(self):
        """Give the build back because of a transient problem."""
        self._setBuildStatus(BuildStatus.GIVENBACK)

    def builderFail(self):
        """The builder itself has a problem."""
        self._setBuildStatus(
            BuildStatus.BUILDERFAIL,
            BuilderStatus.BUILDING,
            BuilderStatus.ABORTING,
        )

    def abort(self):
        """Abort the current build (BUILDING -> ABORTING)."""
        with self._lock:
            if self.builderstatus == BuilderStatus.ABORTING:
                return
            self._requireStatus(
                BuilderStatus.BUILDING, action="asked to abort"
            )
            if self.manager is not None and hasattr(self.manager, "abort"):
                self.manager.abort()
            self.builderstatus = BuilderStatus.ABORTING

    def buildComplete(self, status=None):
        """Finish the build (BUILDING|ABORTING -> WAITING).

        :param status: optionally the final build status, either a
            `BuildStatus` value or its short name ("OK", "PACKAGEFAIL").
        """
        with self._lock:
            self._requireStatus(
                BuilderStatus.BUILDING,
                BuilderStatus.ABORTING,
                action="told build is complete",
            )
            if status is not None:
                if not status.startswith("BuildStatus."):
                    status = "BuildStatus." + status
                if status not in _BUILD_STATUSES:
                    raise ValueError(f"Unknown build status {status!r}")
                self.buildstatus = status
            if self.builderstatus == BuilderStatus.ABORTING:
                if self.buildstatus != BuildStatus.BUILDERFAIL:
                    self.buildstatus = BuildStatus.ABORTED
            self.builderstatus = BuilderStatus.WAITING
            self._fileLog()

    def _fileLog(self):
        """File a copy of the build log in the cache, by its SHA-1.

        launchpad-buildd serves the log itself as ``/filecache/buildlog``;
        this builder serves only SHA-1s, so the master fetches (and
        checks) the copy named by ``build_log_sha1`` in `status`.  A copy,
        not a link: the log stays open for writing.
        """
        self._log.flush()
        tmp, tmppath = self.cache.newTemporaryFile()
        try:
            digest = hashlib.sha1()
            with tmp, open(self._logPath(), "rb") as log_file:
                for chunk in iter(lambda: log_file.read(CHUNK_SIZE), b""):
                    digest.update(chunk)
                    tmp.write(chunk)
            self.build_log_sha1 = self.cache.commitTemporaryFile(
                tmppath, digest.hexdigest()
            )
        finally:
            if os.path.exists(tmppath):
                os.unlink(tmppath)

    def clean(self):
        """Forget the finished build and its files (WAITING -> IDLE)."""
        with self._lock:
            self._requireStatus(BuilderStatus.WAITING, action="asked to clean")
            for sha1 in set(self.waitingfiles.values()):
                self.cache.remove(sha1)
            if self.build_log_sha1 is not None:
                self.cache.remove(self.build_log_sha1)
            self._reset()

    def reset(self):
        """Return to IDLE from any state and empty the whole cache.

        Not part of launchpad-buildd; for tests and tooling.
        """
        with self._lock:
            self._reset()
            self.cache.removeAll()

    def status(self):
        """Return the XML-RPC status dictionary."""
        with self._lock:
            ret = {"builder_status": self.builderstatus}
            if self.builderstatus == BuilderStatus.IDLE:
                pass
            elif self.builderstatus == BuilderStatus.ABORTING:
                ret["build_id"] = self.build_id
            else:
                ret["build_id"] = self.build_id
                ret["logtail"] = Binary(self.getLogTail())
                if self.builderstatus == BuilderStatus.WAITING:
                    ret["build_status"] = self.buildstatus
                    ret["build_log_sha1"] = self.build_log_sha1
                    if self.buildstatus in (
                        BuildStatus.OK,
                        BuildStatus.PACKAGEFAIL,
                        BuildStatus.DEPFAIL,
                    ):
                        ret["filemap"] = dict(self.waitingfiles)
                        ret["dependencies"] = self.builddependencies
            if self.manager is not None and hasattr(self.manager, "status"):
                ret.update(self.manager.status())
            return ret


class XMLRPCBuilder(xmlrpc.XMLRPC):
    """XML-RPC builder management interface."""

    def __init__(self, builder):
        super().__init__(allowNone=True)
        self.protocolversion = PROTOCOL_VERSION
        self.builder = builder
        self._managers = {}

    def registerManager(self, managerclass, managertag):
        self._managers[managertag] = managerclass

    def _fault(self, e):
        return xmlrpc.Fault(self.FAILURE, str(e))

    def xmlrpc_echo(self, *args):
        """Echo the arguments back."""
        return args

    def xmlrpc_info(self):
        """Return the protocol version, architecture and managers."""
        return (
            self.protocolversion,
            self.builder.getArch(),
            list(self._managers),
        )

    def xmlrpc_status(self):
        """Return the status of the builder, as a dictionary."""
        return self.builder.status()

    def xmlrpc_ensurepresent(self, sha1sum, url, username, password):
        """Attempt to ensure the given file is present (in a thread)."""
        return deferToThread(
            self.builder.ensurePresent, sha1sum, url, username, password
        )

    def xmlrpc_abort(self):
        """Abort the current build."""
        try:
            self.builder.abort()
        except ValueError as e:
            return self._fault(e)
        return BuilderStatus.ABORTING

    def xmlrpc_clean(self):
        """Clean up the waiting files and reset the builder's state."""
        try:
            self.builder.clean()
        except ValueError as e:
            return self._fault(e)
        return BuilderStatus.IDLE
