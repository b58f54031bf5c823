# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Enumerations used by archives."""

__all__ = [
    "ArchivePurpose",
]

from lazr.enum import DBEnumeratedType, DBItem


class ArchivePurpose(DBEnumeratedType):
    """The purpose of an archive (values as in Launchpad)."""

    PRIMARY = DBItem(
        1,
        """
        Primary Archive

        This is the primary Ubuntu archive.
        """,
    )

    PPA = DBItem(
        2,
        """
        PPA Archive

        This is a Personal Package Archive.
        """,
    )
