# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for reading the files a build hands over."""

__all__ = []

import os

from fixtures import TempDir
from testtools import TestCase

from lp.oci.model.ociupload import OCIUploadError, read_json_file
from ocitypes.safejson import MAX_JSON_DEPTH


class TestReadJSONFile(TestCase):
    def write(self, data):
        path = os.path.join(self.useFixture(TempDir()).path, "index.json")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_reads_json(self):
        self.assertEqual({"a": [1]}, read_json_file(self.write(b'{"a":[1]}')))

    def test_deeply_nested_json_is_an_upload_error(self):
        # Deep enough to overflow the parser's recursion, which used to
        # escape as a RecursionError traceback.
        path = self.write(b"[" * 100000 + b"]" * 100000)
        error = self.assertRaises(OCIUploadError, read_json_file, path)
        self.assertIn("too deeply nested", str(error))

    def test_depth_limit(self):
        depth = MAX_JSON_DEPTH + 1
        path = self.write(b"[" * depth + b"]" * depth)
        error = self.assertRaises(OCIUploadError, read_json_file, path)
        self.assertIn("index.json is too deeply nested", str(error))

    def test_oversized(self):
        path = self.write(b" " * (4 * 1024 * 1024 + 1) + b"{}")
        error = self.assertRaises(OCIUploadError, read_json_file, path)
        self.assertIn("index.json", str(error))
