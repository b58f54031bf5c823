# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the atomic OCI layout writer, directly and via `gather`."""

__all__ = []

import os

from fixtures import TempDir
from testtools import TestCase

from lpbuildd.ociimage.errors import (
    ArchiveError,
    CorruptArchive,
    DigestMismatch,
    OutputError,
)
from lpbuildd.ociimage.gather import gather
from lpbuildd.ociimage.layout import LayoutWriter
from lpbuildd.ociimage.tests.helpers import GatherTestCase
from lpbuildd.tests.archivebuilder import (
    diff_id_mismatch_archive,
    legacy_docker_save,
    make_image,
)
from ocitypes.digest import Digest


class TestLayoutWriter(TestCase):
    def setUp(self):
        super().setUp()
        self.parent = self.useFixture(TempDir()).path
        self.outdir = os.path.join(self.parent, "out")

    def test_commit_is_atomic(self):
        writer = LayoutWriter(self.outdir)
        self.assertFalse(os.path.exists(self.outdir))
        digest = writer.add_blob_bytes(b"{}")
        self.assertEqual(Digest.of_bytes(b"{}"), digest)
        self.assertEqual(digest, writer.add_blob_bytes(b"{}"))
        writer.commit([])
        self.assertEqual(["out"], os.listdir(self.parent))
        self.assertEqual(
            ["blobs", "index.json", "oci-layout"],
            sorted(os.listdir(self.outdir)),
        )
        self.assertEqual(
            [digest.hex], os.listdir(os.path.join(self.outdir, "blobs/sha256"))
        )

    def test_abort_leaves_nothing(self):
        writer = LayoutWriter(self.outdir)
        writer.add_blob_bytes(b"x")
        writer.abort()
        writer.abort()
        self.assertEqual([], os.listdir(self.parent))

    def test_empty_directory_is_replaced(self):
        os.mkdir(self.outdir)
        writer = LayoutWriter(self.outdir)
        writer.commit([])
        self.assertIn("index.json", os.listdir(self.outdir))

    def test_non_empty_directory_refused(self):
        os.mkdir(self.outdir)
        with open(os.path.join(self.outdir, "keep"), "w") as f:
            f.write("mine")
        e = self.assertRaises(OutputError, LayoutWriter, self.outdir)
        self.assertIn("already exists and is not an empty directory", str(e))
        self.assertTrue(issubclass(OutputError, ArchiveError))
        self.assertEqual(["out"], os.listdir(self.parent))
        self.assertEqual(["keep"], os.listdir(self.outdir))

    def test_file_or_symlink_refused(self):
        with open(self.outdir, "w"):
            pass
        self.assertRaises(OutputError, LayoutWriter, self.outdir)
        os.unlink(self.outdir)
        os.mkdir(os.path.join(self.parent, "target"))
        os.symlink("target", self.outdir)
        self.assertRaises(OutputError, LayoutWriter, self.outdir)

    def test_missing_parent(self):
        e = self.assertRaises(
            OutputError, LayoutWriter, os.path.join(self.parent, "a", "b")
        )
        self.assertIn("is not a directory", str(e))


class TestGatherOutput(GatherTestCase):
    def test_existing_non_empty_outdir(self):
        outdir = self.new_outdir()
        os.mkdir(outdir)
        with open(os.path.join(outdir, "precious"), "w") as f:
            f.write("keep me")
        data = legacy_docker_save(make_image()).to_bytes()
        e = self.assertRaises(OutputError, self.gather, data, outdir=outdir)
        self.assertIn(outdir, str(e))
        self.assertEqual(
            [os.path.basename(outdir)], os.listdir(self.outparent)
        )
        self.assertEqual(["precious"], os.listdir(outdir))

    def test_existing_empty_outdir_kept_on_failure(self):
        outdir = self.new_outdir()
        os.mkdir(outdir)
        self.assertRaises(
            DigestMismatch,
            self.gather,
            diff_id_mismatch_archive().to_bytes(),
            outdir=outdir,
        )
        self.assertEqual(
            [os.path.basename(outdir)], os.listdir(self.outparent)
        )
        self.assertEqual([], os.listdir(outdir))

    def test_existing_empty_outdir_filled(self):
        outdir = self.new_outdir()
        os.mkdir(outdir)
        self.gather(legacy_docker_save(make_image()).to_bytes(), outdir=outdir)
        self.assertValidLayout(outdir)
        self.assertEqual(
            [os.path.basename(outdir)], os.listdir(self.outparent)
        )

    def test_missing_source(self):
        outdir = self.new_outdir()
        e = self.assertRaises(
            CorruptArchive,
            gather,
            os.path.join(self.tmp, "nonexistent"),
            outdir,
        )
        self.assertIn("cannot open", str(e))
        self.assertNothingLeft()
