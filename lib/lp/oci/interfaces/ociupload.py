# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Errors about the files an OCI build hands over."""

__all__ = [
    "OCIUploadError",
]

from lp.archiveuploader.utils import UploadError
from ocitypes.errors import OCIContentError


class OCIUploadError(OCIContentError, UploadError):
    """The files a build handed over are not a valid upload.

    An `UploadError`, so that the upload processor rejects the upload
    with this message; an `OCIContentError`, so that the message is one
    line whatever the content put in it.
    """
