# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the flat file names of an OCI upload."""

__all__ = []

from testtools import TestCase

from ocitypes.digest import Digest
from ocitypes.filenames import (
    blob_file_name,
    digest_from_blob_file_name,
    upload_file_name,
)

HEX = "a" * 64


class TestUploadFileName(TestCase):
    def test_names(self):
        self.assertEqual("index.json", upload_file_name("index.json"))
        self.assertEqual("oci-layout", upload_file_name("oci-layout"))
        self.assertEqual(
            "blobs-sha256-" + HEX, upload_file_name(f"blobs/sha256/{HEX}")
        )

    def test_refuses_other_files(self):
        for relpath in (
            "manifest.json",
            "blobs/x",
            "blobs/sha256/XYZ",
            "blobs/md5/" + "a" * 32,
            "blobs/sha256/" + HEX + "/x",
        ):
            self.assertRaises(ValueError, upload_file_name, relpath)


class TestBlobFileName(TestCase):
    def test_round_trip(self):
        digest = Digest("sha256", HEX)
        name = blob_file_name(digest)
        self.assertEqual("blobs-sha256-" + HEX, name)
        self.assertEqual(digest, digest_from_blob_file_name(name))

    def test_other_names_are_not_blobs(self):
        for name in (
            "index.json",
            "blobs-sha256",
            "blobs-sha256-xyz",
            "blobs-sha256-" + HEX + "-x",
            "layers-sha256-" + HEX,
            None,
        ):
            self.assertIsNone(digest_from_blob_file_name(name))
