# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Harness: the Launchpad-side reader on mutated upload directories.

The input drives `mutate_upload` (through `BytesRandom`): a valid OCI
or legacy upload, made in code, with its JSON documents and files
damaged.  When the first byte is 0xC0 or more, the rest replaces
``index.json`` of an OCI upload instead (libFuzzer then mutates JSON
bytes itself).  Property: `read_upload` (as the build farm and the
upload processor read) returns images, or raises `OCILayoutError` or
`OCIUploadError` with a one-line message; anything else is a crash.
"""

__all__ = [
    "INSTRUMENT",
    "prepare",
    "seeds",
    "test_one_input",
]

import os
import shutil
import tempfile

INSTRUMENT = ("lp.oci.model.ocilayout", "lp.oci.model.ociupload", "ocitypes")
RAW = 0xC0

_work = None


def prepare():
    global _work
    import lp.oci.interfaces.ociupload  # noqa: F401
    from lp.oci.tests.uploadfuzzing import base_uploads

    base_uploads()
    _work = tempfile.mkdtemp(prefix="fuzz-ociupload-")


def seeds():
    from lp.oci.tests.uploadfuzzing import base_uploads

    return [
        bytes([RAW]) + files["index.json"]
        for files in base_uploads()
        if "index.json" in files
    ] + [bytes(range(64)), b"\x00" * 16]


def test_one_input(data):
    from lp.oci.interfaces.ociupload import OCIUploadError
    from lp.oci.model.ocilayout import OCILayoutError
    from lp.oci.tests.uploadfuzzing import (
        base_uploads,
        mutate_upload,
        read_upload,
        write_upload,
    )
    from lpbuildd.tests.fuzzing import BytesRandom

    if _work is None:
        prepare()
    if data[:1] and data[0] >= RAW:
        files = base_uploads()[0]
        files["index.json"] = data[1:]
    else:
        files = mutate_upload(BytesRandom(data))
    directory = os.path.join(_work, "upload")
    os.mkdir(directory)
    try:
        write_upload(files, directory)
        try:
            read_upload(directory)
        except (OCILayoutError, OCIUploadError) as e:
            assert "\n" not in str(e), str(e)
    finally:
        shutil.rmtree(directory)


if __name__ == "__main__":
    from fuzz.common import fuzz_main

    fuzz_main("fuzz.ociupload")
