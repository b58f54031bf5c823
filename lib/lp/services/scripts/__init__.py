# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Setting up a process (script, job runner, test) to use Launchpad code.

A process calls, in this order:

    execute_zcml_for_scripts()          # register utilities and adapters
    connect("sqlite:/srv/lp/launchpad.db")   # or a postgres: URI
    configure_librarian("/srv/lp/librarian")

or `setup_services`, which does all three from a state directory.
"""

__all__ = [
    "execute_zcml_for_scripts",
    "setup_services",
]

import os

from zope.configuration import xmlconfig

import lp
from lp.services.config import config
from lp.services.database.connection import connect, default_database_uri
from lp.services.librarian.storage import configure_librarian

_zcml_done = False


def execute_zcml_for_scripts():
    """Load ``lp/configure.zcml`` (once per process)."""
    global _zcml_done
    if not _zcml_done:
        xmlconfig.file("configure.zcml", package=lp)
        _zcml_done = True


def setup_services(state_dir, database_uri=None, librarian_root=None):
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
    """
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
    connect(database_uri)
    configure_librarian(librarian_root)
