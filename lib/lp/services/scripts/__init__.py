# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Setting up a process (script, job runner, test) to use Launchpad code.

A process calls, in this order:

    execute_zcml_for_scripts()          # register utilities and adapters
    connect("sqlite:/srv/lp/launchpad.db")   # or a postgres: URI
    configure_librarian("/srv/lp/librarian")

or `setup_services`, which does all three from a state directory.

Only a process that may create a state passes ``schema="create"`` to
`setup_services` (``lp-oci run``), and even then a database is created
only where the librarian holds no stored content: content without a
database is a lost or mistyped database, never a new state.  Processes
that only read pass ``schema="check"`` and ``read_only=True``: they
write nothing at start-up, and work on a read-only copy of a state.
"""

__all__ = [
    "StateDatabaseError",
    "execute_zcml_for_scripts",
    "librarian_file_count",
    "setup_services",
]

import os
import re
import urllib.parse

from zope.configuration import xmlconfig

import lp
from lp.services.config import config
from lp.services.database.connection import (
    connect,
    default_database_uri,
    disconnect,
)
from lp.services.database.migration import (
    SchemaMissing,
    SchemaOutdated,
    SchemaTooNew,
)
from lp.services.librarian.storage import configure_librarian
from ocitypes.errors import OCIContentError

_zcml_done = False
_HEX2 = re.compile(r"\A[0-9a-f]{2}\Z")
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")


class StateDatabaseError(OCIContentError):
    """The state's database cannot be used as asked; one line."""


def librarian_file_count(root):
    """How many content files (``<hex2>/<sha256>``) ``root`` holds."""
    count = 0
    try:
        tops = os.listdir(root)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for top in tops:
        if not _HEX2.match(top):
            continue
        try:
            names = os.listdir(os.path.join(root, top))
        except (FileNotFoundError, NotADirectoryError):
            continue
        count += sum(
            1 for name in names if _HEX64.match(name) and name[:2] == top
        )
    return count


def _safe_uri(uri):
    """``uri`` without a password."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.password:
        host = parsed.hostname or ""
        if parsed.port:
            host += f":{parsed.port}"
        parsed = parsed._replace(netloc=f"{parsed.username}@{host}")
    return urllib.parse.urlunsplit(parsed)


def execute_zcml_for_scripts():
    """Load ``lp/configure.zcml`` (once per process)."""
    global _zcml_done
    if not _zcml_done:
        xmlconfig.file("configure.zcml", package=lp)
        _zcml_done = True


def setup_services(
    state_dir,
    database_uri=None,
    librarian_root=None,
    schema="upgrade",
    read_only=False,
):
    """Make this process ready to use the models.

    :param state_dir: Directory for the default SQLite database
        (``<state_dir>/launchpad.db``) and librarian
        (``<state_dir>/librarian``).
    :param database_uri: Overrides the database; when None, the
        ``LP_DATABASE_URI`` environment variable, else the
        configuration's ``[database] url``.
    :param librarian_root: Overrides the librarian directory; when None,
        ``LP_LIBRARIAN_ROOT``, else the configuration's
        ``[librarian] root``.
    :param schema: ``"create"`` (a new database, only beside an empty
        librarian), ``"upgrade"`` (an existing schema) or ``"check"``
        (write nothing); see `connect`.
    :param read_only: Open the database read-only (with ``"check"``).
    :raises StateDatabaseError: the database is not one to use so.
    """
    if schema == "create":
        os.makedirs(state_dir, exist_ok=True)
    execute_zcml_for_scripts()
    database_uri = (
        database_uri
        or os.environ.get("LP_DATABASE_URI")
        or config.database.url
        or default_database_uri(state_dir)
    )
    librarian_root = (
        librarian_root
        or os.environ.get("LP_LIBRARIAN_ROOT")
        or config.librarian.root
        or os.path.join(state_dir, "librarian")
    )
    # Counted (every content file listed) only where it decides
    # something: before creating, or to explain a missing schema.
    stored = (
        librarian_file_count(librarian_root) if schema == "create" else None
    )
    if stored:
        # Content without a database is a lost database: never replace
        # it with an empty one.
        schema = "upgrade"
    try:
        connect(database_uri, schema=schema, read_only=read_only)
    except (SchemaMissing, SchemaOutdated, SchemaTooNew) as e:
        disconnect()
        reason = str(e)
        if isinstance(e, SchemaMissing):
            if stored is None:
                stored = librarian_file_count(librarian_root)
            if stored:
                reason += (
                    f", but the librarian {os.path.abspath(librarian_root)} "
                    f"holds {stored} stored files: refusing to use it as a "
                    "new state (a lost database, or the wrong --config?)"
                )
            else:
                reason += " (lp-oci run creates a state)"
        elif isinstance(e, SchemaOutdated):
            reason += " (lp-oci run or run-jobs upgrades it)"
        raise StateDatabaseError(
            f"database {_safe_uri(database_uri)}: {reason}"
        ) from None
    configure_librarian(librarian_root)
