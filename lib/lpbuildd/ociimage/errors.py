# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Errors raised while reading an image archive.

The builder's hierarchy, below the shared `OCIContentError` (documents and
descriptors that are not well formed raise the shared `MalformedContent`).
Every error carries a one-line message that names what is wrong, so that
the command line can print it without a traceback.
"""

__all__ = [
    "ArchiveError",
    "CorruptArchive",
    "DigestMismatch",
    "OutputError",
    "UnsafeArchive",
    "UnsupportedArchive",
]

from ocitypes.errors import OCIContentError


class ArchiveError(OCIContentError):
    """An image archive cannot be ingested."""


class UnsupportedArchive(ArchiveError):
    """The archive is of a kind we do not read (e.g. pre-1.10 docker)."""


class CorruptArchive(ArchiveError):
    """The archive is damaged: truncated, missing parts, invalid JSON."""


class DigestMismatch(CorruptArchive):
    """Content does not match the digest, size or diff_id it claims."""


class OutputError(ArchiveError):
    """The output directory cannot be written."""


class UnsafeArchive(ArchiveError):
    """The archive tries something hostile: escapes, bombs, cycles."""
