# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the reader's value types: blobs, layers and images."""

__all__ = []

import dataclasses

from testtools import TestCase

from lpbuildd.ociimage.blobstore import DocumentBlob, LayerBlob
from lpbuildd.ociimage.errors import CorruptArchive
from lpbuildd.ociimage.image import CheckedDocument, ForeignLayer, Image, Layer
from ocitypes.descriptor import Descriptor, MediaType, Platform
from ocitypes.digest import Digest
from ocitypes.safejson import MAX_JSON_SIZE

CONFIG = b'{"rootfs":{"diff_ids":[]}}'
PLATFORM = Platform("linux", "amd64")


def digest(data):
    return Digest.of_bytes(data)


def layer_blob(**overrides):
    """A layer that arrived gzip-compressed and is output as it came."""
    fields = dict(
        name="blobs/sha256/x",
        size=3,
        digest=digest(b"gz"),
        diff_id=digest(b"tar"),
        compression="gzip",
        recompressed=False,
        path="/nonexistent",
        out_digest=digest(b"gz"),
        out_size=3,
    )
    fields.update(overrides)
    return LayerBlob(**fields)


class TestBlobs(TestCase):
    def test_document_in_memory_or_spooled(self):
        blob = DocumentBlob("a", 2, digest(b"{}"), data=b"{}")
        self.assertEqual(b"{}", blob.read_bytes())
        self.assertRaises(
            ValueError, DocumentBlob, "a", 2, digest(b"{}"), b"{}", "/p"
        )
        self.assertRaises(ValueError, DocumentBlob, "a", 2, digest(b"{}"))
        self.assertRaises(
            ValueError, DocumentBlob, "a", 3, digest(b"{}"), data=b"{}"
        )

    def test_big_spooled_document_is_not_json(self):
        blob = DocumentBlob(
            "big", MAX_JSON_SIZE + 1, digest(b""), path="/nonexistent"
        )
        e = self.assertRaises(CorruptArchive, blob.read_bytes)
        self.assertIn("is not a JSON document", str(e))

    def test_frozen(self):
        blob = layer_blob()
        self.assertRaises(
            dataclasses.FrozenInstanceError, setattr, blob, "path", "/x"
        )

    def test_layer_compression(self):
        self.assertRaises(ValueError, layer_blob, compression="tar")

    def test_kept_layer_is_output_as_it_came(self):
        self.assertRaises(ValueError, layer_blob, out_size=4)
        self.assertRaises(ValueError, layer_blob, out_digest=digest(b"x"))

    def test_recompressed_layer_diff_id_is_its_digest(self):
        tar = digest(b"tar")
        blob = layer_blob(
            digest=tar,
            diff_id=tar,
            recompressed=True,
            out_digest=digest(b"ours"),
            out_size=4,
        )
        self.assertTrue(blob.recompressed)
        self.assertRaises(
            ValueError,
            layer_blob,
            recompressed=True,
            out_digest=digest(b"ours"),
        )


class TestLayers(TestCase):
    def test_layer_matches_its_blob(self):
        blob = layer_blob()
        descriptor = Descriptor(MediaType.OCI_LAYER_GZIP, blob.out_digest, 3)
        layer = Layer(blob.diff_id, descriptor, blob)
        self.assertFalse(layer.is_foreign)
        self.assertFalse(layer.recompressed)
        self.assertRaises(
            ValueError, Layer, digest(b"other"), descriptor, blob
        )
        self.assertRaises(
            ValueError,
            Layer,
            blob.diff_id,
            Descriptor(MediaType.OCI_LAYER_GZIP, blob.out_digest, 4),
            blob,
        )

    def test_foreign_layer(self):
        foreign = Descriptor(
            MediaType.DOCKER_FOREIGN_LAYER_GZIP, digest(b"w"), 1
        )
        layer = ForeignLayer(digest(b"tar"), foreign)
        self.assertTrue(layer.is_foreign)
        self.assertIsNone(layer.blob)
        self.assertRaises(
            ValueError,
            ForeignLayer,
            digest(b"tar"),
            Descriptor(MediaType.OCI_LAYER_GZIP, digest(b"w"), 1),
        )


class TestImage(TestCase):
    def test_config_must_match_its_digest(self):
        self.assertRaises(
            ValueError, Image, CONFIG, digest(b"other"), PLATFORM, []
        )

    def test_checked_config_is_still_checked(self):
        checked = CheckedDocument.of(CONFIG)
        self.assertEqual(digest(CONFIG), checked.digest)
        self.assertEqual(
            CONFIG,
            Image(checked, digest(CONFIG), PLATFORM, []).config_bytes(),
        )
        self.assertRaises(
            ValueError, Image, checked, digest(b"other"), PLATFORM, []
        )

    def test_sequences_become_tuples(self):
        image = Image(CONFIG, digest(CONFIG), PLATFORM, [], names=[("r", "t")])
        self.assertEqual((), image.layers)
        self.assertEqual((("r", "t"),), image.names)

    def test_with_names_merges_without_duplicates(self):
        image = Image(CONFIG, digest(CONFIG), PLATFORM, (), names=[("r", "a")])
        self.assertIs(image, image.with_names([("r", "a")]))
        merged = image.with_names([("r", "b"), ("r", "a"), ("r", "b")])
        self.assertEqual((("r", "a"), ("r", "b")), merged.names)
        self.assertEqual((("r", "a"),), image.names)
