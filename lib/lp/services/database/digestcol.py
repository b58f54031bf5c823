# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""A Storm column holding a content `Digest`.

The database holds the text form ``sha256:<hex>``.  Values read back are
`Digest` objects; values assigned may be a `Digest` or text, and text may
use the legacy bare-hex spelling, which is normalised on the way in.

Launchpad's ``OCIFile.layer_file_digest`` is ``character(80)``:
PostgreSQL pads its values with spaces, which are dropped on the way
out, and compares them ignoring the padding.
"""

__all__ = [
    "DigestCol",
    "raw_digest_text",
]

from storm.properties import SimpleProperty
from storm.variables import UnicodeVariable, Variable

from ocitypes.digest import Digest


def _to_digest(value):
    if isinstance(value, Digest):
        return value
    return Digest.from_legacy(value)


class DigestVariable(Variable):
    """A Storm variable holding a `Digest`."""

    __slots__ = ()

    def parse_set(self, value, from_db):
        if from_db and isinstance(value, str):
            # character(n) columns come back padded with spaces.
            value = value.rstrip(" ")
        return _to_digest(value)

    def parse_get(self, value, to_db):
        if to_db:
            return str(value)
        return value


class DigestCol(SimpleProperty):
    """A column of `Digest` values, stored as ``algorithm:hex`` text."""

    variable_class = DigestVariable


def raw_digest_text(text):
    """A query parameter holding ``text`` exactly as given.

    Comparing a `DigestCol` with a plain value normalises that value; use
    this to match rows written with some other spelling (e.g. bare hex).
    """
    return UnicodeVariable(value=text)
