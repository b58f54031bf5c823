# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Cross-application exceptions."""

__all__ = [
    "NotFoundError",
]


class NotFoundError(KeyError):
    """Something that was looked up does not exist."""

    def __str__(self):
        # KeyError quotes its argument; a lookup failure reads better bare.
        return Exception.__str__(self)
