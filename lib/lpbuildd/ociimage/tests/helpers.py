# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Shared test support: run `gather` and check what it wrote.

`GatherTestCase` runs `gather` on archive bytes (from a file, a pipe or
a subprocess) into a scratch directory and offers two checks used by
every end-to-end test:

* `assertValidLayout` walks the output OCI layout from `index.json` and
  checks every claim it makes: each referenced blob is present with the
  right digest and size, nothing else is there, layers are compressed
  and decompress to the config's `rootfs.diff_ids`.
* `assertRefused` checks that `gather` fails with the exact exception
  class, a one-line message naming the problem, and leaves nothing
  behind (neither the output directory nor a temporary sibling).
"""

__all__ = [
    "CHILD_ENV",
    "FuzzGatherTestCase",
    "GatherTestCase",
    "LayoutContents",
    "decompress_layer",
    "tree_digests",
]

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field

import zstandard
from fixtures import TempDir
from testtools import TestCase

from lpbuildd.ociimage.gather import gather
from ocitypes.errors import OCIContentError

# A child Python process must import this checkout's code, not whatever
# checkout the shared virtualenv's .pth file points at.
_LIB = os.path.dirname(
    os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    )
)
CHILD_ENV = dict(
    os.environ,
    PYTHONPATH=os.pathsep.join(
        filter(None, [_LIB, os.environ.get("PYTHONPATH")])
    ),
)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
FOREIGN_MARKERS = ("nondistributable", "foreign")
REF_NAME = "org.opencontainers.image.ref.name"
IMAGE_NAME = "io.containerd.image.name"


def _sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def decompress_layer(media_type, data):
    """The uncompressed tar of an output layer blob."""
    if media_type.endswith("gzip"):
        # gzip.decompress handles concatenated members (eStargz).
        return gzip.decompress(data)
    if media_type.endswith("zstd"):
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(data), read_across_frames=True
        )
        return reader.read()
    return data


def tree_digests(path):
    """{relative path: sha256 of content} for every file under `path`,
    plus an entry per directory, to compare output trees."""
    tree = {}
    for dirpath, dirnames, filenames in os.walk(path):
        rel = os.path.relpath(dirpath, path)
        tree[rel + "/"] = None
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                tree[os.path.join(rel, name)] = _sha256(f.read())
    return tree


@dataclass
class OutputImage:
    """One image as read back from an output layout."""

    entries: list  # index.json descriptors naming this manifest
    manifest_digest: str
    manifest: dict
    manifest_bytes: bytes
    config: bytes
    layers: list  # (descriptor, blob bytes or None for foreign layers)

    @property
    def names(self):
        """Sorted (io.containerd.image.name, ref.name) of the entries."""
        return sorted(
            (
                e.get("annotations", {}).get(IMAGE_NAME),
                e.get("annotations", {}).get(REF_NAME),
            )
            for e in self.entries
        )


@dataclass
class LayoutContents:
    """What `assertValidLayout` found."""

    index: dict
    images: list = field(default_factory=list)  # of `OutputImage`

    def by_config(self, config_bytes):
        for image in self.images:
            if image.config == config_bytes:
                return image
        raise KeyError("no image with that config")


class GatherTestCase(TestCase):
    """Run `gather` against scratch directories."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(TempDir()).path
        # Outputs go in a directory of their own, so that "nothing left
        # behind" can be checked by listing it.
        self.outparent = os.path.join(self.tmp, "out")
        os.mkdir(self.outparent)
        self._count = 0

    def write_archive(self, data):
        self._count += 1
        path = os.path.join(self.tmp, f"archive-{self._count}")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def new_outdir(self):
        self._count += 1
        return os.path.join(self.outparent, f"layout-{self._count}")

    def gather(self, data, via="file", outdir=None, **kwargs):
        """Gather archive bytes; return (result, outdir).

        :param via: "file" (a path), "pipe" (an `os.pipe` read end fed
            by a thread) or "subprocess" (the stdout of `cat`).
        """
        outdir = outdir or self.new_outdir()
        kwargs.setdefault("jobs", 1)
        if via == "file":
            return gather(self.write_archive(data), outdir, **kwargs), outdir
        if via == "pipe":
            return self._gather_pipe(data, outdir, **kwargs), outdir
        if via == "subprocess":
            path = self.write_archive(data)
            with subprocess.Popen(
                ["cat", path], stdout=subprocess.PIPE, bufsize=0
            ) as proc:
                try:
                    result = gather(proc.stdout, outdir, **kwargs)
                finally:
                    proc.stdout.close()
            self.assertEqual(0, proc.returncode)
            return result, outdir
        raise ValueError(via)

    def _gather_pipe(self, data, outdir, **kwargs):
        read_fd, write_fd = os.pipe()
        errors = []

        def feed():
            try:
                with open(write_fd, "wb", buffering=0) as w:
                    view = memoryview(data)
                    for i in range(0, len(view), 65536):
                        w.write(view[i : i + 65536])
            except BrokenPipeError:
                pass
            except Exception as e:  # pragma: no cover
                errors.append(e)

        thread = threading.Thread(target=feed, daemon=True)
        thread.start()
        with open(read_fd, "rb", buffering=0) as r:
            try:
                return gather(r, outdir, **kwargs)
            finally:
                # Unblock the writer if gather stopped early.
                r.close()
                thread.join(10)
                self.assertEqual([], errors)

    def assertNothingLeft(self):
        """No output directory and no temporary sibling exists."""
        self.assertEqual([], os.listdir(self.outparent))

    def assertRefused(self, data, exception, fragment, via="file", **kwargs):
        """`gather` fails with exactly `exception`, whose one-line
        message contains `fragment`; nothing is left behind."""
        outdir = self.new_outdir()
        error = self.assertRaises(
            exception, self.gather, data, via=via, outdir=outdir, **kwargs
        )
        self.assertIs(exception, type(error), str(error))
        message = str(error)
        self.assertNotIn("\n", message)
        self.assertIn(fragment, message)
        self.assertNothingLeft()
        return error

    def assertValidLayout(self, outdir, lenient_platform=False):
        """Check the OCI layout at `outdir` thoroughly; return it.

        :param lenient_platform: accept a config without ``os`` or
            ``architecture`` (the index entry's platform stands).
        """
        with open(os.path.join(outdir, "oci-layout"), "rb") as f:
            self.assertEqual(
                {"imageLayoutVersion": "1.0.0"}, json.loads(f.read())
            )
        with open(os.path.join(outdir, "index.json"), "rb") as f:
            index = json.loads(f.read())
        self.assertEqual(2, index["schemaVersion"])
        self.assertEqual(OCI_INDEX, index["mediaType"])
        referenced = set()

        def blob(descriptor):
            digest = descriptor["digest"]
            algorithm, hex = digest.split(":")
            self.assertEqual("sha256", algorithm)
            path = os.path.join(outdir, "blobs", "sha256", hex)
            self.assertFalse(os.path.islink(path), path)
            with open(path, "rb") as f:
                data = f.read()
            self.assertEqual(digest, _sha256(data), path)
            self.assertEqual(descriptor["size"], len(data), path)
            referenced.add(os.path.join("blobs", "sha256", hex))
            return data

        contents = LayoutContents(index)
        by_digest = {}
        self.assertNotEqual([], index["manifests"])
        for entry in index["manifests"]:
            self.assertIn(entry["mediaType"], MANIFEST_TYPES)
            self.assertIn("platform", entry)
            if entry["digest"] in by_digest:
                by_digest[entry["digest"]].entries.append(entry)
                continue
            raw = blob(entry)
            manifest = json.loads(raw)
            self.assertEqual(2, manifest["schemaVersion"])
            config = blob(manifest["config"])
            config_doc = json.loads(config)
            for key in ("architecture", "os"):
                # A config without one takes the index entry's (fuzzed
                # archives); real configs give both.
                if key in config_doc or not lenient_platform:
                    self.assertEqual(entry["platform"][key], config_doc[key])
            diff_ids = config_doc["rootfs"]["diff_ids"]
            self.assertEqual(len(diff_ids), len(manifest["layers"]))
            layers = []
            for desc, diff_id in zip(manifest["layers"], diff_ids):
                media_type = desc["mediaType"]
                if any(m in media_type for m in FOREIGN_MARKERS):
                    layers.append((desc, None))
                    continue
                self.assertTrue(
                    media_type.endswith(("gzip", "zstd")),
                    f"uncompressed layer in output: {media_type}",
                )
                data = blob(desc)
                self.assertEqual(
                    diff_id, _sha256(decompress_layer(media_type, data))
                )
                layers.append((desc, data))
            image = OutputImage(
                [entry], entry["digest"], manifest, raw, config, layers
            )
            by_digest[entry["digest"]] = image
            contents.images.append(image)
        found = set()
        for dirpath, dirnames, filenames in os.walk(outdir):
            rel = os.path.relpath(dirpath, outdir)
            self.assertIn(rel, (".", "blobs", os.path.join("blobs", "sha256")))
            for name in filenames:
                found.add(os.path.normpath(os.path.join(rel, name)))
        self.assertEqual(referenced | {"index.json", "oci-layout"}, found)
        return contents


class FuzzGatherTestCase(GatherTestCase):
    """`gather` on fuzzed archives: success with a valid layout, or one
    `OCIContentError` and nothing left behind."""

    def new_outdir(self):
        # Each example gets a parent of its own, removed afterwards, so
        # that one failing example does not fail all those after it.
        self._count += 1
        self.outparent = os.path.join(self.tmp, f"out-{self._count}")
        os.mkdir(self.outparent)
        return os.path.join(self.outparent, "layout")

    def assertOnlyAllowedOutcomes(self, data):
        outdir = self.new_outdir()
        try:
            self.gather(data, outdir=outdir)
        except OCIContentError as e:
            self.assertNotIn("\n", str(e))
            self.assertNothingLeft()
        else:
            self.assertValidLayout(outdir, lenient_platform=True)
        finally:
            shutil.rmtree(self.outparent, ignore_errors=True)
