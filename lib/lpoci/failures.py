# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""One line for every way a command can fail.

`describe` turns an exception that escaped a command into the one line
``lp-oci: error: ...`` prints, naming the path or key involved: a
file-system error (read-only state, a full disk, a missing or
unreadable file) names its file; a database error names the database
(``sqlite:/path/launchpad.db`` or the PostgreSQL host and database,
never a password).  Anything else is an internal error, still one line;
``LP_OCI_DEBUG=1`` adds the traceback.
"""

__all__ = [
    "database_name",
    "describe",
    "is_database_error",
]

import errno
import os
import sqlite3
import urllib.parse

try:
    import psycopg2
except ImportError:  # pragma: no cover
    psycopg2 = None

_HINTS = {
    errno.ENOSPC: "no space left on device",
    errno.EROFS: "read-only file system",
    errno.EDQUOT: "disk quota exceeded",
}


def database_name():
    """The main database's URI without credentials, or "the database"."""
    try:
        from storm.zope.zstorm import global_zstorm

        from lp.services.database.connection import MAIN_STORE

        uri = global_zstorm.get_default_uris().get(MAIN_STORE)
    except Exception:
        uri = None
    if not uri:
        return "the database"
    for suffix in ("?mode=ro", "&mode=ro"):
        # (How readers open it; not part of its name.)
        if uri.endswith(suffix):
            uri = uri[: -len(suffix)]
    parsed = urllib.parse.urlsplit(uri)
    if parsed.password or parsed.username:
        host = parsed.hostname or ""
        if parsed.port:
            host += f":{parsed.port}"
        parsed = parsed._replace(netloc=host)
    return urllib.parse.urlunsplit(parsed)


def is_database_error(exc):
    if isinstance(exc, sqlite3.Error):
        return True
    if psycopg2 is not None and isinstance(exc, psycopg2.Error):
        return True
    try:
        from storm.exceptions import DatabaseError, DisconnectionError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (DatabaseError, DisconnectionError))


def _one_line(text):
    return " ".join(str(text).split())


def describe(exc):
    """The message (after ``lp-oci: error: ``) for ``exc``."""
    if isinstance(exc, OSError) and not is_database_error(exc):
        reason = _HINTS.get(exc.errno) or exc.strerror or str(exc)
        path = exc.filename
        if path is not None:
            return _one_line(f"{path}: {reason}")
        return _one_line(reason)
    if is_database_error(exc):
        reason = _one_line(exc) or type(exc).__name__
        if "readonly database" in reason or "read-only" in reason:
            reason += " (is the state directory writable?)"
        elif "not a database" in reason or "malformed" in reason:
            reason += " (the database file is damaged)"
        return f"database {database_name()}: {reason}"
    message = _one_line(exc)
    return f"internal error: {type(exc).__name__}" + (
        f": {message}" if message else ""
    )


def debug_enabled():
    return bool(os.environ.get("LP_OCI_DEBUG"))
