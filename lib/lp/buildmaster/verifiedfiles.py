# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""What the build farm verified about the files of an upload.

The download workers compute each file's SHA-1 (checked against the
name the builder gave it) and sha256 while writing it.  So that upload
processing does not read the files again to learn what is already
known, `BuildFarmJobBehaviourBase.handleSuccess` leaves, beside the
upload (``<leaf>/verified-files.json``, outside the
``<archive id>/<distribution name>/`` directory the builder's files go
to), one `VerifiedFile` per downloaded file: its digests, size, inode
and modification time.  The librarian checks the last three with one
``fstat`` before trusting the digests (`LibrarianStorage.storePath`),
so a file changed since is hashed again, never recorded under digests
that are not its own.

Not in Launchpad, whose upload processor reads everything again.
"""

__all__ = [
    "VERIFIED_FILES_NAME",
    "read_verified_files",
    "write_verified_files",
]

import json
import os
import re

from lp.services.librarian.storage import VerifiedFile
from lp.services.osutils import open_regular

VERIFIED_FILES_NAME = "verified-files.json"

_HEX_RE = {
    "sha1": re.compile(r"\A[0-9a-f]{40}\Z"),
    "sha256": re.compile(r"\A[0-9a-f]{64}\Z"),
}


def write_verified_files(leaf_dir, upload_path, downloads):
    """Record ``downloads`` (`DownloadResult`s) in ``leaf_dir``.

    Only files directly in ``upload_path`` whose SHA-1 was checked are
    recorded, by their name there.
    """
    records = {}
    for result in downloads:
        if not _HEX_RE["sha1"].match(result.sha1 or ""):
            continue
        if os.path.dirname(result.path) != os.path.abspath(upload_path):
            continue
        verified = VerifiedFile.fromPath(
            result.path, result.sha256, result.sha1
        )
        records[os.path.basename(result.path)] = verified._asdict()
    path = os.path.join(leaf_dir, VERIFIED_FILES_NAME)
    with open(path + ".tmp", "w") as f:
        json.dump(records, f, sort_keys=True)
    os.replace(path + ".tmp", path)


def _parse(record):
    if not isinstance(record, dict) or set(record) != set(
        VerifiedFile._fields
    ):
        return None
    for field in ("sha256", "sha1"):
        value = record[field]
        if not isinstance(value, str) or not _HEX_RE[field].match(value):
            return None
    for field in ("size", "inode", "mtime_ns"):
        value = record[field]
        if type(value) is not int or value < 0:
            return None
    return VerifiedFile(**record)


# About 200 bytes a file: far more than any upload's files.
_MAX_RECORD_SIZE = 64 * 1024 * 1024


def read_verified_files(leaf_dir):
    """The `VerifiedFile` of each file name recorded in ``leaf_dir``.

    An upload without the record, or with an unreadable one, has none:
    its files are then hashed as they are stored.
    """
    try:
        # Never through a link, nor blocked by a FIFO; bounded.
        with open_regular(os.path.join(leaf_dir, VERIFIED_FILES_NAME)) as f:
            data = f.read(_MAX_RECORD_SIZE + 1)
        if len(data) > _MAX_RECORD_SIZE:
            return {}
        records = json.loads(data)
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(records, dict):
        return {}
    verified = {}
    for name, record in records.items():
        parsed = _parse(record)
        if parsed is not None:
            verified[name] = parsed
    return verified
