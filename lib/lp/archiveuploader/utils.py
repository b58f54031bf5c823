# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Errors and helpers shared by upload processing."""

__all__ = [
    "UploadError",
    "UploadWarning",
]


class UploadError(Exception):
    """An upload cannot be accepted; the message says why, on one line.

    The upload processor catches these (and only these) to reject an
    upload; anything else is a bug and propagates.
    """

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


class UploadWarning(Warning):
    """Something about an upload is odd but acceptable."""
