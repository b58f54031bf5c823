# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for sniffing, deterministic compression and bounded
decompression, including decompression bombs end to end."""

__all__ = []

import errno
import gzip
import hashlib
import io
import json
import lzma
import os
import re
import subprocess
import sys
import threading
import zlib

import zstandard
from fixtures import TempDir
from testtools import TestCase

from lpbuildd.ociimage import blobstore
from lpbuildd.ociimage.compression import (
    BOMB_FLOOR,
    DiffIDHasher,
    ExpansionGuard,
    LayerCompressor,
    open_outer,
    sniff,
)
from lpbuildd.ociimage.errors import (
    CorruptArchive,
    UnsafeArchive,
    UnsupportedArchive,
)
from lpbuildd.ociimage.tests.helpers import CHILD_ENV, GatherTestCase
from lpbuildd.tests.archivebuilder import (
    Image,
    estargz_compress,
    gzip_bomb,
    legacy_docker_save,
    make_image,
    make_layer,
    oci_archive,
    raw_tar,
    raw_tar_header,
    replace_blob,
    xz_with_dictionary,
    zstd_bomb,
    zstd_skippable_frame,
)
from ocitypes.safejson import MAX_JSON_ELEMENTS

# Bombs expand to this much if nothing stops them.
BOMB_SIZE = 10 << 30
# Work, not time, is what a unit test can bound: the guard must trip
# before this much has been decompressed (BOMB_FLOOR plus the ratio
# allowance for the first 1 MiB chunks of bomb), whatever the machine's
# speed.  With a 1000:1 bound it tripped after 3-8 GB.
BOMB_EXPANDED_LIMIT = BOMB_FLOOR + 512 * 1024 * 1024
BOMB_MEMORY = 100 * 1024  # KiB, as ru_maxrss counts on Linux


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


# Runs lp-oci gather and reports the process's own peak RSS: VmHWM
# belongs to the address space created at exec, whereas ru_maxrss (and
# so wait4) carries over the peak of the process that forked it.
_CHILD = """
import sys
from lpoci.cli import main
try:
    status = main(["gather", sys.argv[1], "-o", sys.argv[2]])
finally:
    with open("/proc/self/status") as f:
        hwm = [l.split()[1] for l in f if l.startswith("VmHWM:")]
    print("VmHWM", hwm[0])
sys.exit(status)
"""


def gather_in_child(archive_path, outdir):
    """Run ``lp-oci gather`` in a fresh process.

    :return: (exit status, stderr text, that process's peak RSS in KiB).
    """
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, archive_path, outdir],
        env=CHILD_ENV,
        capture_output=True,
        text=True,
    )
    peak = int(proc.stdout.split("VmHWM")[-1])
    return proc.returncode, proc.stderr, peak


class TestSniff(TestCase):
    def test_kinds(self):
        layer = make_layer()
        self.assertEqual("tar", sniff(layer))
        self.assertEqual("tar", sniff(bytes(1024)))
        self.assertEqual("gzip", sniff(gzip.compress(layer)))
        self.assertEqual(
            "zstd", sniff(zstandard.ZstdCompressor().compress(layer))
        )
        self.assertEqual("xz", sniff(lzma.compress(layer)))
        self.assertEqual("bzip2", sniff(b"BZh91AY&SY"))
        self.assertIsNone(sniff(b'{"json": true}'))
        self.assertIsNone(sniff(b""))
        self.assertIsNone(sniff(layer[:511]))


class TestExpansionGuard(TestCase):
    def test_within_bounds(self):
        guard = ExpansionGuard("x", ratio=10, floor=100)
        guard.compressed = 10
        guard.expanded = 200
        guard.check()

    def test_beyond_bounds(self):
        guard = ExpansionGuard("the thing", ratio=10, floor=100)
        guard.compressed = 10
        guard.expanded = 201
        e = self.assertRaises(UnsafeArchive, guard.check)
        self.assertIn("the thing expands more than 10:1", str(e))
        self.assertIn("decompression bomb", str(e))


class TestDiffIDHasher(TestCase):
    def feed(self, kind, data, chunk=1000):
        hasher = DiffIDHasher(kind, "layer 'x'")
        for i in range(0, len(data), chunk):
            hasher.update(data[i : i + chunk])
        return str(hasher.finish())

    def test_gzip(self):
        layer = make_layer(size=100000)
        self.assertEqual(
            sha256(layer), self.feed("gzip", gzip.compress(layer))
        )

    def test_gzip_concatenated_members_and_padding(self):
        layer = make_layer(size=100000)
        data = gzip.compress(layer[:5000]) + gzip.compress(layer[5000:])
        self.assertEqual(sha256(layer), self.feed("gzip", data))
        self.assertEqual(sha256(layer), self.feed("gzip", data + bytes(700)))

    def test_estargz(self):
        blob, raw, _ = estargz_compress(make_layer(size=50000))
        self.assertEqual(sha256(raw), self.feed("gzip", blob))

    def test_zstd_frames(self):
        layer = make_layer(size=100000)
        c = zstandard.ZstdCompressor()
        data = c.compress(layer[:7000]) + c.compress(layer[7000:])
        self.assertEqual(sha256(layer), self.feed("zstd", data))

    def test_truncated_gzip(self):
        data = gzip.compress(make_layer(size=100000))
        e = self.assertRaises(
            CorruptArchive, self.feed, "gzip", data[: len(data) // 2]
        )
        self.assertEqual("layer 'x': truncated gzip stream", str(e))

    def test_gzip_trailer_checked(self):
        data = gzip.compress(make_layer(size=10000), mtime=0)
        for offset, what in ((-8, "CRC"), (-4, "size")):
            bad = bytearray(data)
            bad[offset] ^= 1
            e = self.assertRaises(
                CorruptArchive, self.feed, "gzip", bytes(bad)
            )
            self.assertIn("is not valid gzip", str(e), what)

    def test_invalid(self):
        data = bytearray(gzip.compress(make_layer(size=10000)))
        data[len(data) // 2] ^= 0xFF
        e = self.assertRaises(CorruptArchive, self.feed, "gzip", bytes(data))
        self.assertIn("layer 'x' is not valid gzip", str(e))

    def test_truncated_zstd_refused(self):
        # libzstd cannot tell a cut frame from one still arriving; the
        # frame walk can, wherever the cut is.
        layer = make_layer(size=300000)
        for compressor in (
            zstandard.ZstdCompressor(),
            zstandard.ZstdCompressor(write_checksum=True, level=1),
            zstandard.ZstdCompressor(write_content_size=False, threads=2),
        ):
            data = compressor.compress(layer)
            self.assertEqual(sha256(layer), self.feed("zstd", data))
            for cut in range(1, len(data), max(1, len(data) // 97)):
                e = self.assertRaises(
                    CorruptArchive, self.feed, "zstd", data[:cut]
                )
                self.assertIn("zstd", str(e))

    def test_zstd_checksum_checked(self):
        data = bytearray(
            zstandard.ZstdCompressor(write_checksum=True).compress(b"x" * 999)
        )
        data[-1] ^= 1
        e = self.assertRaises(CorruptArchive, self.feed, "zstd", bytes(data))
        self.assertIn("checksum", str(e))

    def test_zstd_skippable_frames(self):
        layer = make_layer(size=10000)
        frame = zstandard.ZstdCompressor().compress(layer)
        for data in (
            zstd_skippable_frame() + frame,
            zstd_skippable_frame(b"", 15) + frame + zstd_skippable_frame(),
            frame[:0] + zstd_skippable_frame(b"x" * 70000) + frame,
        ):
            self.assertEqual("zstd", sniff(data[:1024]))
            self.assertEqual(sha256(layer), self.feed("zstd", data))
        # Only skippable frames: no content at all is not a layer.
        self.assertRaises(
            CorruptArchive, self.feed, "zstd", zstd_skippable_frame()
        )

    def test_bounded(self):
        e = self.assertRaises(
            UnsafeArchive,
            self.feed,
            "zstd",
            zstd_bomb(BOMB_FLOOR * 4),
            1 << 20,
        )
        self.assertIn("decompression bomb", str(e))


class TestZstdWindow(TestCase):
    def test_huge_window_refused(self):
        # A frame may demand a decoding window of up to 2 GiB (zstd
        # --long); our memory use must not be the archive's choice.
        params = zstandard.ZstdCompressionParameters(
            window_log=26, enable_ldm=True, write_content_size=False
        )
        out = io.BytesIO()
        writer = zstandard.ZstdCompressor(
            compression_params=params
        ).stream_writer(out, closefd=False)
        writer.write(make_layer())
        writer.close()
        self.assertEqual(
            64 << 20,
            zstandard.get_frame_parameters(out.getvalue()).window_size,
        )
        hasher = DiffIDHasher("zstd", "layer 'x'")
        error = self.assertRaises(
            CorruptArchive, hasher.update, out.getvalue()
        )
        self.assertIn("too much memory", str(error))


class TestLayerCompressor(TestCase):
    def compress(self, data, compression, threads):
        out = io.BytesIO()
        compressor = LayerCompressor(out, compression, threads)
        for i in range(0, len(data), 300000):
            compressor.write(data[i : i + 300000])
        digest, size = compressor.finish()
        blob = out.getvalue()
        self.assertEqual(sha256(blob), str(digest))
        self.assertEqual(len(blob), size)
        return blob

    def test_gzip_round_trip_and_deterministic(self):
        layer = make_layer(size=3 << 20, seed=3)
        blobs = [self.compress(layer, "gzip", t) for t in (1, 2, 4, 1)]
        self.assertEqual(layer, gzip.decompress(blobs[0]))
        self.assertEqual({blobs[0]}, set(blobs))
        # No mtime and no file name in the header.
        self.assertEqual(b"\0\0\0\0", blobs[0][4:8])
        self.assertFalse(blobs[0][3] & 0x08)

    def test_zstd_round_trip_and_deterministic(self):
        layer = make_layer(size=3 << 20, seed=4)
        blobs = [self.compress(layer, "zstd", t) for t in (1, 2, 1)]
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(blobs[0]), read_across_frames=True
        )
        self.assertEqual(layer, reader.read())
        self.assertEqual({blobs[0]}, set(blobs))

    def test_unknown(self):
        self.assertRaises(ValueError, LayerCompressor, io.BytesIO(), "lz4")

    def test_full_disk_names_the_file(self):
        class FullFile(io.RawIOBase):
            name = "/state/work/.member-1"

            def writable(self):
                return True

            def write(self, data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        for compression in ("gzip", "zstd"):

            def fill():
                compressor = LayerCompressor(FullFile(), compression)
                compressor.write(make_layer(size=1 << 20, seed=5))
                compressor.finish()

            error = self.assertRaises(OSError, fill)
            self.assertEqual(
                (errno.ENOSPC, FullFile.name), (error.errno, error.filename)
            )


class TestOpenOuter(TestCase):
    def test_kinds(self):
        data = make_layer(size=50000)
        for kind, compressed in (
            ("gzip", gzip.compress(data)),
            ("xz", lzma.compress(data)),
            ("zstd", zstandard.ZstdCompressor().compress(data)),
        ):
            name, stream = open_outer(io.BytesIO(compressed), compressed[:512])
            self.assertEqual(kind, name)
            self.assertEqual(data, stream.read())
        raw = io.BytesIO(data)
        self.assertEqual((None, raw), open_outer(raw, data[:512]))

    def test_xz_memory_limited(self):
        data = make_layer(size=50000)
        for code in (37, 40, 30):
            stream = xz_with_dictionary(data, code)
            kind, reader = open_outer(io.BytesIO(stream), stream[:1024])
            e = self.assertRaises(UnsafeArchive, reader.read)
            self.assertIn("MiB of memory", str(e))
        # Within the limit (32 MiB, as xz -8): read as usual.
        stream = xz_with_dictionary(data, 26)
        kind, reader = open_outer(io.BytesIO(stream), stream[:1024])
        self.assertEqual(data, reader.read())

    def test_xz_concatenated_streams(self):
        data = make_layer(size=50000)
        stream = (
            lzma.compress(data[:100]) + bytes(8) + lzma.compress(data[100:])
        )
        kind, reader = open_outer(io.BytesIO(stream), stream[:1024])
        self.assertEqual(data, reader.read())

    def test_zstd_skippable_frame_first(self):
        data = make_layer(size=50000)
        stream = zstd_skippable_frame() + zstandard.ZstdCompressor().compress(
            data
        )
        kind, reader = open_outer(io.BytesIO(stream), stream[:1024])
        self.assertEqual(("zstd", data), (kind, reader.read()))

    def test_bzip2(self):
        e = self.assertRaises(
            UnsupportedArchive, open_outer, io.BytesIO(), b"BZh9"
        )
        self.assertIn("bzip2", str(e))


class TestLayerStreamEnds(GatherTestCase):
    """A compressed layer must end properly, even when every digest in
    the archive agrees with what a cut stream decompresses to."""

    def cut_layer_archive(self, compression, blob, cut):
        short = blob[:cut]
        if compression == "zstd":
            reader = zstandard.ZstdDecompressor().stream_reader(
                io.BytesIO(short), read_across_frames=True
            )
            prefix = reader.read()
        else:
            prefix = zlib.decompressobj(31).decompress(short)
        image = Image(
            [prefix],
            layer_compression=compression,
            compressed_layers=[short],
        )
        return oci_archive(image, layer_compression=compression).to_bytes()

    def test_truncated_layers_refused(self):
        layer = make_layer(size=200000, seed=5)
        for compression, blob in (
            ("zstd", zstandard.ZstdCompressor().compress(layer)),
            ("gzip", gzip.compress(layer, mtime=0)),
        ):
            for cut in (len(blob) // 2, len(blob) - 3):
                self.assertRefused(
                    self.cut_layer_archive(compression, blob, cut),
                    CorruptArchive,
                    f"truncated {compression} stream",
                )

    def test_skippable_frame_layer_accepted(self):
        layer = make_layer(size=20000)
        blob = zstd_skippable_frame() + zstandard.ZstdCompressor().compress(
            layer
        )
        image = Image(
            [layer], layer_compression="zstd", compressed_layers=[blob]
        )
        result, outdir = self.gather(
            oci_archive(image, layer_compression="zstd").to_bytes()
        )
        self.assertValidLayout(outdir)

    def test_outer_trailer_checked(self):
        archive = oci_archive(make_image()).to_bytes()
        for outer, stream in (
            (
                "zstd",
                zstandard.ZstdCompressor(write_checksum=True).compress(
                    archive
                ),
            ),
            ("gzip", gzip.compress(archive, mtime=0)),
            ("xz", lzma.compress(archive)),
        ):
            for cut in (1, 3):
                self.assertRefused(
                    stream[:-cut], CorruptArchive, f"outer {outer} stream"
                )
            result, outdir = self.gather(stream)
            self.assertValidLayout(outdir)
            os.rename(outdir, os.path.join(self.tmp, os.urandom(8).hex()))


class TestLongZeroRuns(TestCase):
    def test_gzip_layer_of_zeros_accepted(self):
        # 512 MiB of zeros compresses about 1000:1, like a layer holding
        # a non-sparse copy of a sparse file: not a bomb.
        hasher = DiffIDHasher("gzip", "layer 'zeros'")
        hasher.update(gzip_bomb(512 << 20))
        hasher.finish()
        self.assertEqual(512 << 20, hasher.guard.expanded)


class TestBombs(GatherTestCase):
    """Bombs are refused early, with bounded memory, leaving nothing.

    Each bomb is built (cheaply) before measuring, so that only what
    `gather` does is counted.  How early is read from the refusal, which
    says how many bytes had come out when the guard tripped.
    """

    def assertBombRefused(self, data, fragment):
        error = self.assertRefused(data, UnsafeArchive, fragment)
        self.assertIn("decompression bomb", str(error))
        expanded = int(re.search(r"became over (\d+)", str(error)).group(1))
        self.assertLess(expanded, BOMB_EXPANDED_LIMIT, str(error))

    def layer_bomb_archive(self, bomb, layer_compression):
        builder = oci_archive(
            make_image(), layer_compression=layer_compression
        )
        replace_blob(builder, builder.images[0].layer_digests[0], bomb)
        return builder.to_bytes()

    def test_gzip_layer(self):
        data = self.layer_bomb_archive(gzip_bomb(BOMB_SIZE), "gzip")
        self.assertBombRefused(data, "layer 'blobs/sha256/")

    def test_zstd_layer(self):
        data = self.layer_bomb_archive(zstd_bomb(BOMB_SIZE), "zstd")
        self.assertBombRefused(data, "layer 'blobs/sha256/")

    def test_gzip_outer(self):
        self.assertBombRefused(
            gzip_bomb(BOMB_SIZE, as_tar=True), "the archive's outer gzip"
        )

    def test_zstd_outer(self):
        self.assertBombRefused(
            zstd_bomb(BOMB_SIZE, as_tar=True), "the archive's outer zstd"
        )

    def test_gzip_outer_from_a_pipe(self):
        bomb = gzip_bomb(BOMB_SIZE, as_tar=True)
        self.assertRefused(
            bomb, UnsafeArchive, "decompression bomb", via="pipe"
        )

    def test_memory_bounded_in_a_fresh_process(self):
        # Peak RSS can only be measured honestly in a process of its
        # own: this one's peak is whatever an earlier test reached.
        tmp = self.useFixture(TempDir()).path
        bombs = {
            "layer.tar": self.layer_bomb_archive(zstd_bomb(BOMB_SIZE), "zstd"),
            "outer.tar.gz": gzip_bomb(BOMB_SIZE, as_tar=True),
            # A 4 GiB dictionary (refused from the block header).
            "outer.tar.xz": xz_with_dictionary(
                gzip.decompress(gzip_bomb(8 << 20, as_tar=True)), 40
            ),
        }
        fragments = {"outer.tar.xz": "MiB of memory to decode"}
        for name, data in bombs.items():
            path = os.path.join(tmp, name)
            with open(path, "wb") as f:
                f.write(data)
            outdir = os.path.join(tmp, "out-" + name)
            status, stderr, peak = gather_in_child(path, outdir)
            self.assertEqual(1, status, stderr)
            self.assertEqual(1, len(stderr.splitlines()), stderr)
            self.assertIn(fragments.get(name, "decompression bomb"), stderr)
            self.assertLess(peak, BOMB_MEMORY, name)
            self.assertFalse(os.path.exists(outdir))


class TestWorkOnlyForReferencedBlobs(GatherTestCase):
    """Junk costs reading and hashing, nothing more."""

    def count_tempfiles(self):
        calls = []
        original = blobstore.BlobStore._tempfile
        self.patch(
            blobstore.BlobStore,
            "_tempfile",
            lambda store: calls.append(1) or original(store),
        )
        return calls

    def test_junk_that_looks_like_layers(self):
        builder = oci_archive(make_image())
        for i in range(600):
            builder.add_file(f"junk/{i}/empty.tar", bytes(1024))
            builder.add_file(f"junk/{i}/x.gz", gzip.compress(b"", mtime=0))
            builder.add_file(
                f"junk/{i}/x.zst", zstandard.ZstdCompressor().compress(b"")
            )
        calls = self.count_tempfiles()
        before = threading.active_count()
        result, outdir = self.gather(builder.to_bytes())
        self.assertValidLayout(outdir)
        # One file for the one referenced layer; no compressor thread
        # was ever started for junk (they would still be counted here
        # only if leaked, so count the files instead).
        self.assertEqual(1, len(calls))
        self.assertEqual(before, threading.active_count())

    def test_all_layers_share_one_expansion_bound(self):
        # Each layer alone is within its own bound; together they are
        # not (the shared floor is made small here, as bytes, not time).
        self.patch(
            blobstore,
            "ExpansionGuard",
            lambda what: ExpansionGuard(what, floor=8 << 20),
        )
        zeros = bytes(3 << 20)
        frame = zstandard.ZstdCompressor(level=19).compress(zeros)
        blobs = [zstd_skippable_frame(b"%d" % i) + frame for i in range(4)]
        image = Image(
            [zeros] * 4, layer_compression="zstd", compressed_layers=blobs
        )
        self.assertRefused(
            oci_archive(image, layer_compression="zstd").to_bytes(),
            UnsafeArchive,
            "the archive's layers together expands",
        )


class TestHostileCasesInAFreshProcess(GatherTestCase):
    """Peak memory of `lp-oci gather`, each case in a process of its
    own (see `gather_in_child`): under 100 MB, one line or success."""

    def cases(self):
        junk = oci_archive(make_image())
        for i in range(2000):
            junk.add_file(f"junk/{i}.tar", bytes(1024))
        graph = oci_archive(make_image())
        child = json.loads(graph.get("index.json"))["manifests"][0]
        for _ in range(7):
            data = json.dumps(
                {"schemaVersion": 2, "manifests": [child] * 50}
            ).encode()
            graph.add_file(f"blobs/sha256/{sha256(data)[7:]}", data)
            child = {
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": sha256(data),
                "size": len(data),
            }
        graph.replace(
            "index.json",
            json.dumps({"schemaVersion": 2, "manifests": [child]}).encode(),
        )
        long_name = raw_tar(
            (raw_tar_header(b"././@LongLink", 100 << 30, type=b"L"), b"")
        )
        # 16 MiB of junk held as documents, then an index.json of 19,000
        # entries (nearly the bound on descriptors visited).
        big_index = oci_archive(make_image())
        for i in range(5):
            big_index.add_file(f"junk/{i}", bytes([i]) * (4 << 20))
        leaf = json.loads(big_index.get("index.json"))["manifests"][0]
        missing = [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:%064x" % i,
                "size": 1,
            }
            for i in range(19000)
        ]
        big_index.replace(
            "index.json",
            json.dumps(
                {"schemaVersion": 2, "manifests": [leaf] + missing},
                separators=(",", ":"),
            ).encode(),
        )
        # The densest document the element bound lets through.
        strings = oci_archive(make_image())
        strings.replace(
            "index.json", b"[" + b'"ab",' * (MAX_JSON_ELEMENTS - 1) + b'"ab"]'
        )
        # Eight nested indexes, each as dense as a document may be.
        nested = oci_archive(make_image())
        child = json.loads(nested.get("index.json"))["manifests"][0]
        padding = ["ab"] * (MAX_JSON_ELEMENTS - 100)
        for _ in range(8):
            data = json.dumps(
                {"schemaVersion": 2, "manifests": [child], "x": padding},
                separators=(",", ":"),
            ).encode()
            nested.add_file(f"blobs/sha256/{sha256(data)[7:]}", data)
            child = {
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": sha256(data),
                "size": len(data),
            }
        nested.replace(
            "index.json",
            json.dumps({"schemaVersion": 2, "manifests": [child]}).encode(),
        )
        # Ten images whose configs are 3.5 MiB each: held all at once,
        # they were 70 MB (twice their size); now each is read when
        # written.
        layer = make_layer()
        big_configs = legacy_docker_save(
            [
                make_image(
                    layers=[layer],
                    tags=[f"app:{i}"],
                    config_overrides={"padding": chr(97 + i) * (7 << 19)},
                )
                for i in range(10)
            ]
        )
        return {
            "big-configs.tar": (big_configs.to_bytes(), None),
            "nested-dense.tar": (nested.to_bytes(), None),
            "big-index.tar": (big_index.to_bytes(), None),
            "json-strings.tar": (strings.to_bytes(), "not a JSON object"),
            "junk.tar": (junk.to_bytes(), None),
            "graph.tar": (graph.to_bytes(), None),
            "long-name.tar": (long_name, "the limit is 1048576"),
        }

    def test_memory_and_outcome(self):
        tmp = self.useFixture(TempDir()).path
        for name, (data, fragment) in self.cases().items():
            path = os.path.join(tmp, name)
            with open(path, "wb") as f:
                f.write(data)
            outdir = os.path.join(tmp, "out-" + name)
            status, stderr, peak = gather_in_child(path, outdir)
            self.assertLess(peak, BOMB_MEMORY, name)
            if fragment is None:
                self.assertEqual((0, ""), (status, stderr), name)
                self.assertTrue(os.path.isdir(outdir))
            else:
                self.assertEqual(1, status, stderr)
                self.assertEqual(1, len(stderr.splitlines()), stderr)
                self.assertIn(fragment, stderr)
                self.assertFalse(os.path.exists(outdir))
