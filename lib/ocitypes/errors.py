# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The base errors both sides raise about OCI content.

Each side has its own hierarchy below `OCIContentError` (the builder's
`lpbuildd.ociimage.errors.ArchiveError`, Launchpad's
`lp.oci.interfaces.ociupload.OCIUploadError`); what the shared value
types raise is `MalformedContent`.  Every message is one line, whatever
the content put in it, so that commands can print it without a
traceback.
"""

__all__ = [
    "MalformedContent",
    "OCIContentError",
]


class OCIContentError(Exception):
    """OCI content (an archive, an upload, a document) is not acceptable."""

    def __init__(self, message):
        # Keep the message on one line whatever the content put in it.
        message = " ".join(str(message).split())
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message


class MalformedContent(OCIContentError):
    """A document, descriptor or digest is not well formed."""
