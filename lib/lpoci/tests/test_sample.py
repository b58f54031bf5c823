# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for `lpoci.sample`."""

__all__ = []

import os

from fixtures import TempDir
from testtools import TestCase

from lpbuildd.ociimage.gather import gather
from lpoci.sample import write_sample_archive


class TestWriteSampleArchive(TestCase):
    def test_deterministic(self):
        directory = self.useFixture(TempDir()).path
        paths = [os.path.join(directory, f"{i}.tar") for i in range(2)]
        for path in paths:
            self.assertEqual(path, write_sample_archive(path))
        contents = []
        for path in paths:
            with open(path, "rb") as f:
                contents.append(f.read())
        self.assertEqual(contents[0], contents[1])

    def test_gathers_as_docker25_classic(self):
        directory = self.useFixture(TempDir()).path
        archive = write_sample_archive(os.path.join(directory, "s.tar"))
        result = gather(archive, os.path.join(directory, "out"), jobs=1)
        self.assertEqual("docker25-classic", result.format)
        (image,) = result.images
        self.assertEqual("linux/amd64", str(image.platform))
        self.assertEqual(3, len(image.layers))
