# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Librarian files as the web application hands them out."""

__all__ = [
    "ProxiedLibraryFileAlias",
]

from urllib.parse import quote

from lp.services.webapp.publisher import canonical_url


class ProxiedLibraryFileAlias:
    """A librarian file reached through the object it belongs to.

    Its URL is ``<canonical URL of parent>/+files/<filename>``, so that
    whoever serves it checks access to the parent (e.g. a private build)
    rather than handing out the librarian's own URL.
    """

    def __init__(self, context, parent):
        self.context = context
        self.parent = parent

    @property
    def http_url(self):
        """The file's URL, or None if its content has been deleted."""
        if self.context.content is None:
            return None
        return "%s/+files/%s" % (
            canonical_url(self.parent),
            quote(self.context.filename),
        )
