# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""The flat names under which a builder files an OCI upload.

A builder's file cache is flat (``filemap`` maps a plain file name to a
SHA-1), so the OCI image layout's files are filed under these names:

    oci-layout, index.json       the same
    blobs/<algorithm>/<hex>      blobs-<algorithm>-<hex>

The mapping is reversible, so Launchpad derives each blob's digest from
its name and verifies the content against it.
"""

__all__ = [
    "INDEX_FILE_NAME",
    "LAYOUT_FILE_NAME",
    "OCI_LAYOUT_VERSION",
    "blob_file_name",
    "digest_from_blob_file_name",
    "upload_file_name",
]

from ocitypes.digest import Digest

INDEX_FILE_NAME = "index.json"
LAYOUT_FILE_NAME = "oci-layout"
OCI_LAYOUT_VERSION = "1.0.0"


def blob_file_name(digest):
    """The flat name of the blob ``digest`` in an OCI upload."""
    return f"blobs-{digest.algorithm}-{digest.hex}"


def digest_from_blob_file_name(name):
    """The `Digest` a ``blobs-<algorithm>-<hex>`` name stands for, or None."""
    parts = name.split("-") if isinstance(name, str) else ()
    if len(parts) != 3 or parts[0] != "blobs":
        return None
    try:
        return Digest(parts[1], parts[2])
    except ValueError:
        return None


def upload_file_name(relpath):
    """The flat name of a file at ``relpath`` (``/``-separated) in a layout.

    :raises ValueError: for a file that is not part of an OCI upload.
    """
    parts = relpath.split("/")
    if len(parts) == 1 and parts[0] in (LAYOUT_FILE_NAME, INDEX_FILE_NAME):
        return parts[0]
    if len(parts) == 3 and parts[0] == "blobs":
        try:
            return blob_file_name(Digest(parts[1], parts[2]))
        except ValueError:
            pass
    raise ValueError(f"unexpected file {relpath!r} in an OCI upload")
