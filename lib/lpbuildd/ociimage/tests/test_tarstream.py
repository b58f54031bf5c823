# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the forward-only, hostile tar walk.

Unit tests of `normalise_name`, `resolve_link`, `ForwardReader` and
`iter_members`, then the tar-level hostile cases end to end through
`gather`: escaping names and links, link cycles, duplicate members and
truncation.
"""

__all__ = []

import io
import random
import tarfile
import threading

from testtools import TestCase

from lpbuildd.ociimage.errors import (
    ArchiveError,
    CorruptArchive,
    UnsafeArchive,
    UnsupportedArchive,
)
from lpbuildd.ociimage.tarstream import (
    MAX_HEADER_RECORD,
    ForwardReader,
    iter_members,
    normalise_name,
    resolve_link,
)
from lpbuildd.ociimage.tests.helpers import GatherTestCase
from lpbuildd.tests.archivebuilder import (
    ArchiveBuilder,
    docker25_classic,
    legacy_docker_save,
    link_escape_archive,
    make_image,
    make_layer,
    oci_archive,
    pax_record,
    raw_tar,
    raw_tar_header,
    symlink_cycle_archive,
)


class OneWayStream(io.RawIOBase):
    """A pipe-like stream: short reads, no tell, no seek.

    Like `gather`, callers of `iter_members` buffer it.
    """

    def __init__(self, data):
        self._data = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, buffer):
        chunk = self._data.read(min(len(buffer), 100))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def seekable(self):
        return False


class TestNormaliseName(TestCase):
    def test_normal_names(self):
        self.assertEqual("a/b", normalise_name("a/b"))
        self.assertEqual("a/b", normalise_name("./a//b/"))
        self.assertEqual("b", normalise_name("a/../b"))
        self.assertEqual("", normalise_name("."))
        self.assertEqual("", normalise_name("./"))

    def test_escapes(self):
        for name in ("..", "../x", "a/../../x", "./../x", "a/b/../../../x"):
            e = self.assertRaises(UnsafeArchive, normalise_name, name)
            self.assertIn("escapes the archive", str(e))

    def test_absolute(self):
        for name in ("/", "/etc/passwd", "//x"):
            e = self.assertRaises(UnsafeArchive, normalise_name, name)
            self.assertIn("is an absolute path", str(e))

    def test_unreasonable(self):
        e = self.assertRaises(UnsafeArchive, normalise_name, "a\0b")
        self.assertIn("NUL byte", str(e))
        self.assertRaises(UnsafeArchive, normalise_name, "a" * 5000)
        self.assertRaises(UnsafeArchive, normalise_name, None)

    def test_names_what(self):
        e = self.assertRaises(
            UnsafeArchive, normalise_name, "../x", "manifest path"
        )
        self.assertEqual("manifest path '../x' escapes the archive", str(e))


class TestResolveLink(TestCase):
    def test_symlink_relative_to_directory(self):
        self.assertEqual(
            "b/layer.tar", resolve_link("a/layer.tar", "../b/layer.tar", False)
        )
        self.assertEqual("a/x", resolve_link("a/layer.tar", "x", False))

    def test_hardlink_relative_to_root(self):
        self.assertEqual(
            "b/layer.tar", resolve_link("a/layer.tar", "b/layer.tar", True)
        )

    def test_escapes(self):
        for target, hard in (
            ("../../x", False),
            ("../x", True),
            ("/etc/passwd", False),
            ("/etc/passwd", True),
        ):
            e = self.assertRaises(
                UnsafeArchive, resolve_link, "a/layer.tar", target, hard
            )
            self.assertIn("points outside the archive", str(e))


class TestForwardReader(TestCase):
    def test_read_and_tell(self):
        reader = ForwardReader(io.BytesIO(b"0123456789"))
        self.assertEqual(b"012", reader.read(3))
        self.assertEqual(3, reader.tell())
        self.assertEqual(7, reader.seek(7))
        self.assertEqual(b"789", reader.read())

    def test_seek_forward_relative(self):
        reader = ForwardReader(io.BytesIO(b"0123456789"))
        reader.seek(2, io.SEEK_CUR)
        self.assertEqual(b"2", reader.read(1))

    def test_backwards_refused(self):
        reader = ForwardReader(io.BytesIO(b"0123456789"))
        reader.read(5)
        e = self.assertRaises(CorruptArchive, reader.seek, 2)
        self.assertIn("backwards", str(e))
        self.assertRaises(io.UnsupportedOperation, reader.seek, 0, io.SEEK_END)

    def test_seek_past_end(self):
        reader = ForwardReader(io.BytesIO(b"0123"))
        e = self.assertRaises(CorruptArchive, reader.seek, 10)
        self.assertIn("truncated", str(e))


class TestIterMembers(TestCase):
    def archive(self):
        builder = ArchiveBuilder()
        builder.add_dir("d")
        builder.add_file("d/f", b"hello")
        builder.add_symlink("d/s", "f")
        builder.add_hardlink("h", "d/f")
        fifo = tarfile.TarInfo("fifo")
        fifo.type = tarfile.FIFOTYPE
        builder.add_raw(fifo)
        builder.add_file("big", bytes(3 << 20))
        return builder

    def test_members_from_a_pipe(self):
        stream = io.BufferedReader(OneWayStream(self.archive().to_bytes()))
        seen = []
        for member in iter_members(stream):
            data = (
                b"".join(member.read_chunks())
                if member.kind == "file"
                else b""
            )
            seen.append((member.name, member.kind, member.target, len(data)))
        self.assertEqual(
            [
                ("d", "dir", None, 0),
                ("d/f", "file", None, 5),
                ("d/s", "symlink", "d/f", 0),
                ("h", "hardlink", "d/f", 0),
                ("fifo", "other", None, 0),
                ("big", "file", None, 3 << 20),
            ],
            seen,
        )

    def test_unread_members_skipped(self):
        stream = io.BufferedReader(OneWayStream(self.archive().to_bytes()))
        names = [m.name for m in iter_members(stream)]
        self.assertEqual(["d", "d/f", "d/s", "h", "fifo", "big"], names)

    def test_not_a_tar(self):
        e = self.assertRaises(
            CorruptArchive, list, iter_members(io.BytesIO(b"x" * 2000))
        )
        self.assertIn("not a tar archive", str(e))

    def test_sparse_refused(self):
        builder = ArchiveBuilder()
        info = tarfile.TarInfo("sparse")
        info.type = tarfile.GNUTYPE_SPARSE
        data = info.tobuf(tarfile.GNU_FORMAT)
        stream = io.BytesIO(data + bytes(1024))
        e = self.assertRaises(UnsupportedArchive, list, iter_members(stream))
        self.assertIn("sparse", str(e))
        self.assertEqual(0, len(builder))

    def test_truncated_member_data(self):
        data = self.archive().to_bytes()
        # Cut inside "big".
        stream = io.BytesIO(data[: len(data) - 1024 - (1 << 20)])
        e = self.assertRaises(
            CorruptArchive,
            lambda: [
                list(m.read_chunks()) if m.kind == "file" else None
                for m in iter_members(stream)
            ],
        )
        self.assertIn("truncated", str(e))


class TestHostileMembers(GatherTestCase):
    def test_member_name_traversal(self):
        for name in ("../../evil", "a/../../evil", "blobs/../../evil"):
            builder = legacy_docker_save(make_image())
            builder.add_file(name, b"x")
            self.assertRefused(
                builder.to_bytes(),
                UnsafeArchive,
                "archive member name %r escapes the archive" % name,
            )

    def test_renamed_blob_traversal(self):
        builder = oci_archive(make_image())
        name = builder.blob_name(builder.images[0].id)
        builder.rename(name, "../" + name)
        self.assertRefused(
            builder.to_bytes(), UnsafeArchive, "escapes the archive"
        )

    def test_absolute_member_name(self):
        builder = legacy_docker_save(make_image())
        builder.add_file("/etc/passwd", b"x")
        self.assertRefused(
            builder.to_bytes(),
            UnsafeArchive,
            "archive member name '/etc/passwd' is an absolute path",
        )

    def test_absolute_directory(self):
        builder = legacy_docker_save(make_image())
        builder.add_dir("/tmp")
        self.assertRefused(
            builder.to_bytes(), UnsafeArchive, "is an absolute path"
        )

    def test_link_escapes(self):
        for target in ("../../x", "../../../etc/passwd", "/etc/passwd"):
            for hardlink in (False, True):
                self.assertRefused(
                    link_escape_archive(target, hardlink=hardlink).to_bytes(),
                    UnsafeArchive,
                    "-> %r points outside the archive" % target,
                )

    def test_symlink_cycles(self):
        for self_loop in (False, True):
            self.assertRefused(
                symlink_cycle_archive(self_loop=self_loop).to_bytes(),
                UnsafeArchive,
                "link cycle in the archive",
            )

    def test_link_to_nothing(self):
        builder = link_escape_archive("../nowhere/layer.tar")
        self.assertRefused(builder.to_bytes(), CorruptArchive, "is missing")

    def test_hardlink_inside_is_followed(self):
        image = make_image(layers=[make_layer(seed=1), make_layer(seed=1)])
        builder = legacy_docker_save(image, duplicate_symlinks=False)
        first, second = builder.info["v1_ids"][0]
        builder.remove(second + "/layer.tar")
        builder.add_hardlink(second + "/layer.tar", first + "/layer.tar")
        result, outdir = self.gather(builder.to_bytes())
        self.assertEqual(2, result.layer_count)
        self.assertValidLayout(outdir)

    def test_duplicate_member_names(self):
        cases = [
            ("manifest.json", lambda b: b.add_file("manifest.json", b"[]")),
            ("index.json", lambda b: b.add_file("./index.json", b"{}")),
            (
                "index.json",
                lambda b: b.add_symlink("index.json", "oci-layout"),
            ),
        ]
        for name, tamper in cases:
            builder = docker25_classic(make_image())
            tamper(builder)
            self.assertRefused(
                builder.to_bytes(),
                CorruptArchive,
                "archive member %r appears twice" % name,
            )

    def test_duplicate_blob_same_content(self):
        builder = oci_archive(make_image())
        name = builder.blob_name(builder.images[0].layer_digests[0])
        builder.add_file(name, builder.get(name))
        self.assertRefused(builder.to_bytes(), CorruptArchive, "appears twice")


class TestTruncation(GatherTestCase):
    def builder(self):
        noise = random.Random(1).randbytes(300000)
        return docker25_classic(
            make_image(layers=[make_layer({"noise": noise})])
        )

    def test_truncated_plain(self):
        builder = self.builder()
        data = builder.to_bytes()
        cuts = [100, 511, 512, 1000, 5000, len(data) // 2, len(data) - 1024]
        for cut in cuts:
            error = self.assertRefused(data[:cut], CorruptArchive, "")
            self.assertIn("truncated", str(error), cut)

    def test_no_compressor_thread_left_behind(self):
        # Cut inside an uncompressed layer being compressed, with one
        # and with several compressor threads.
        data = self.builder().to_bytes()
        before = set(threading.enumerate())
        for jobs in (1, 3):
            self.assertRefused(
                data[: len(data) // 2], CorruptArchive, "truncated", jobs=jobs
            )
            self.assertEqual(before, set(threading.enumerate()))

    def test_lost_end_marker(self):
        data = self.builder().to_bytes()
        self.assertRefused(
            data[:-1024], CorruptArchive, "no end-of-archive marker"
        )

    def test_truncated_gzip_and_xz(self):
        builder = self.builder()
        for outer in ("gzip", "xz"):
            data = builder.to_bytes(outer)
            for cut in (20, len(data) // 2, len(data) - 4, len(data) - 1):
                self.assertRefused(
                    data[:cut],
                    CorruptArchive,
                    "corrupt outer %s stream" % outer,
                )

    def test_truncated_zstd(self):
        # zstd cannot tell a cut stream from the end of a frame, but the
        # tar walk can.
        builder = self.builder()
        data = builder.to_bytes("zstd")
        for cut in (len(data) // 2, len(data) - 4):
            self.assertRefused(data[:cut], CorruptArchive, "truncated")
        # A cut inside the first block yields nothing at all.
        self.assertRefused(
            data[:100],
            CorruptArchive,
            "corrupt outer zstd stream: it decompresses to nothing "
            "(truncated?)",
        )

    def test_empty(self):
        self.assertRefused(b"", CorruptArchive, "the archive is empty")

    def test_garbage(self):
        self.assertRefused(b"x" * 5000, CorruptArchive, "not a tar archive")

    def test_bzip2(self):
        self.assertRefused(
            b"BZh91AY&SY" + bytes(100), UnsupportedArchive, "bzip2"
        )

    def test_truncated_from_a_pipe(self):
        data = self.builder().to_bytes()
        self.assertRefused(
            data[: len(data) // 2], CorruptArchive, "truncated", via="pipe"
        )


def _walk(data):
    """[(name, kind, target, data)] for every member of a tar stream."""
    seen = []
    for member in iter_members(io.BufferedReader(OneWayStream(data))):
        content = b""
        if member.kind == "file":
            content = b"".join(member.read_chunks())
        seen.append((member.name, member.kind, member.target, content))
    return seen


def _pax(*records, type=b"x"):
    data = b"".join(records)
    return raw_tar_header(b"PaxHeader", len(data), type=type), data


class TestHeaderParsing(TestCase):
    """Headers we parse ourselves: what real writers produce is read."""

    def test_tarfile_formats_round_trip(self):
        long_name = "d/" + "n" * 150 + "/" + "f" * 120
        long_link = "../" + "t" * 200
        for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT):
            if fmt == tarfile.USTAR_FORMAT:
                names = ("a" * 90 + "/" + "b" * 90, "l", "c")
            else:
                names = (long_name, long_link, "c")
            out = io.BytesIO()
            with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
                info = tarfile.TarInfo(names[0])
                info.size = 3
                tar.addfile(info, io.BytesIO(b"abc"))
                link = tarfile.TarInfo(names[0] + "-link")
                link.type = tarfile.SYMTYPE
                link.linkname = names[1]
                tar.addfile(link)
            seen = _walk(out.getvalue())
            self.assertEqual((names[0], "file", None, b"abc"), seen[0])
            self.assertEqual("symlink", seen[1][1])

    def test_pax_path_linkpath_size(self):
        data = raw_tar(
            _pax(
                pax_record(b"path", "caf\u00e9/x".encode()),
                pax_record(b"size", b"5"),
            ),
            (raw_tar_header(b"short", 0), b"hello"),
            _pax(pax_record(b"linkpath", b"x")),
            (raw_tar_header(b"caf\xc3\xa9/l", type=b"2", linkname=b"y"), b""),
        )
        self.assertEqual(
            [
                ("caf\u00e9/x", "file", None, b"hello"),
                ("caf\u00e9/l", "symlink", "caf\u00e9/x", b""),
            ],
            _walk(data),
        )

    def test_gnu_long_name_and_link(self):
        name = b"n" * 300
        data = raw_tar(
            (
                raw_tar_header(b"././@LongLink", len(name) + 1, type=b"L"),
                name + b"\0",
            ),
            (raw_tar_header(b"n" * 100, 2), b"hi"),
            (raw_tar_header(b"././@LongLink", 4, type=b"K"), b"abc\0"),
            (raw_tar_header(b"h", type=b"1", linkname=b"x"), b""),
        )
        self.assertEqual(
            [("n" * 300, "file", None, b"hi"), ("h", "hardlink", "abc", b"")],
            _walk(data),
        )

    def test_global_header_ignored(self):
        data = raw_tar(
            _pax(pax_record(b"comment", b"git"), type=b"g"),
            (raw_tar_header(b"f", 1), b"x"),
        )
        self.assertEqual([("f", "file", None, b"x")], _walk(data))

    def test_base256_size(self):
        field = b"\x80" + (5).to_bytes(11, "big")
        data = raw_tar((raw_tar_header(b"f", size_field=field), b"12345"))
        self.assertEqual([("f", "file", None, b"12345")], _walk(data))

    def test_header_only_types_have_no_data(self):
        # A directory claiming a size has no data after it (as in Go).
        data = raw_tar(
            (raw_tar_header(b"d/", 1000, type=b"5"), b""),
            (raw_tar_header(b"f", 1), b"x"),
        )
        self.assertEqual(
            [("d", "dir", None, b""), ("f", "file", None, b"x")], _walk(data)
        )


class TestHostileHeaders(GatherTestCase):
    """Every malformed header is one `ArchiveError`, bounded by bytes."""

    def assertHeaderRefused(self, data, exception, fragment):
        e = self.assertRaises(exception, _walk, data)
        self.assertIs(exception, type(e), str(e))
        self.assertNotIn("\n", str(e))
        self.assertIn(fragment, str(e))
        # And end to end: one line, nothing left behind, no thread.
        self.assertRefused(data, exception, fragment)

    def test_malformed_pax_records(self):
        bad = [
            b"x",
            b"5 a=b",
            b"0 a=b\n",
            b"06 a=\n",
            b"6 ab\n",
            b"6 =b\n",
            b"99 a=b\n",
            b"-6 a=b\n",
            b"6\ta=b\n",
            b"7 a=bc",
            b"1" * 30 + b" a=b\n",
            b"\xff\xfe a=b\n",
            b"9 \xff\xfe=b\n",
        ]
        for record in bad:
            data = raw_tar(_pax(record), (raw_tar_header(b"f", 1), b"x"))
            self.assertHeaderRefused(data, CorruptArchive, "PAX")

    def test_negative_and_huge_sizes(self):
        cases = [
            _pax(pax_record(b"size", b"-5")),
            _pax(pax_record(b"size", b"99999999999999999999999")),
            _pax(pax_record(b"size", b"1e3")),
        ]
        for pax in cases:
            data = raw_tar(pax, (raw_tar_header(b"f", 1), b"x"))
            self.assertHeaderRefused(data, CorruptArchive, "PAX size")
        for field in (
            b"\xff" * 12,
            b"\xff" + bytes(10) + b"\x05",
            b"\x80" + b"\xff" * 11,
            b" -0000000005",
            b"0000000008\0\0",
            b"garbage\0\0\0\0\0",
        ):
            data = raw_tar((raw_tar_header(b"f", size_field=field), b""))
            self.assertHeaderRefused(data, CorruptArchive, "size")

    def test_sparse_refused(self):
        cases = [
            (raw_tar_header(b"old", 0, type=b"S"), b""),
            _pax(pax_record(b"GNU.sparse.map", b"0,1")),
            _pax(
                pax_record(b"GNU.sparse.major", b"1"),
                pax_record(b"GNU.sparse.minor", b"0"),
                pax_record(b"GNU.sparse.map", b"0,10,x"),
            ),
            _pax(pax_record(b"GNU.sparse.numblocks", b"1" * 30)),
        ]
        for case in cases:
            data = raw_tar(case, (raw_tar_header(b"f", 1), b"x"))
            self.assertHeaderRefused(data, UnsupportedArchive, "sparse")

    def test_names_are_bytes(self):
        # Tar names are bytes: one that is not UTF-8 is kept, escaped
        # (surrogateescape), so that its member is junk like any other
        # rather than a reason to refuse the archive.  Before, each of
        # these was refused as "not UTF-8".
        esc = "\udcff\udcfe"
        cases = [
            (
                raw_tar(
                    _pax(
                        pax_record(b"hdrcharset", b"BINARY"),
                        pax_record(b"path", b"\xff\xfe"),
                    ),
                    (raw_tar_header(b"f", 1), b"x"),
                ),
                [(esc, "file", None, b"x")],
            ),
            (
                raw_tar(
                    _pax(pax_record(b"hdrcharset", b"\xff")),
                    (raw_tar_header(b"\xff\xfe", 1), b"x"),
                ),
                [(esc, "file", None, b"x")],
            ),
            (
                raw_tar(
                    (
                        raw_tar_header(b"././@LongLink", 3, type=b"L"),
                        b"\xff\xfe\0",
                    ),
                    (raw_tar_header(b"f", 1), b"x"),
                ),
                [(esc, "file", None, b"x")],
            ),
        ]
        for data, expected in cases:
            self.assertEqual(expected, _walk(data))
        # A link to a name that is not UTF-8 links to no member.
        [(name, kind, target, _)] = _walk(
            raw_tar((raw_tar_header(b"f", type=b"2", linkname=b"\xc3"), b""))
        )
        self.assertEqual(("f", "symlink", "\udcc3"), (name, kind, target))

    def test_pax_keys_must_be_utf8(self):
        data = raw_tar(
            _pax(pax_record(b"\xff", b"1")),
            (raw_tar_header(b"f", 1), b"x"),
        )
        self.assertHeaderRefused(data, CorruptArchive, "not UTF-8")

    def test_header_records_capped(self):
        # Refused from the header alone: no need to send the megabytes.
        for type in (b"x", b"g", b"L", b"K"):
            data = raw_tar(
                (raw_tar_header(b"h", MAX_HEADER_RECORD + 1, type=type), b"")
            )
            self.assertHeaderRefused(data, UnsafeArchive, "the limit is")

    def test_corrupt_headers(self):
        good = raw_tar_header(b"f", 1)
        cases = {
            "bad header checksum": raw_tar(
                (good, b"x"), (raw_tar_header(b"g", 1, checksum=1), b"y")
            ),
            "garbage after the end": raw_tar((good, b"x"), end=False)
            + bytes(512)
            + b"junk",
            "followed by the end": raw_tar(_pax(pax_record(b"a", b"b"))),
            "not a tar archive": raw_tar(
                (raw_tar_header(b"f", 1, checksum=7), b"x")
            ),
            "truncated": raw_tar(
                _pax(pax_record(b"a", b"b" * 600)), end=False
            )[:900],
        }
        for fragment, data in cases.items():
            self.assertHeaderRefused(data, CorruptArchive, fragment)

    def test_fuzzed_headers_only_archive_errors(self):
        # Seeded mutations of a small valid archive with every kind of
        # header: whatever the bytes, the walk ends in success or one
        # `ArchiveError`, and never reads more than it was given.
        base = raw_tar(
            _pax(pax_record(b"path", b"p" * 120), pax_record(b"size", b"3")),
            (raw_tar_header(b"f", 3), b"abc"),
            (raw_tar_header(b"././@LongLink", 6, type=b"L"), b"long\0\0"),
            (raw_tar_header(b"l", type=b"2", linkname=b"f"), b""),
            (raw_tar_header(b"d/", type=b"5"), b""),
        )
        rng = random.Random(7)
        for _ in range(3000):
            data = bytearray(base)
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(data))
                data[i] = (
                    rng.choice((0, 0x20, 0x30, 0x37, 0x80, 0xFF))
                    if (rng.random() < 0.5)
                    else rng.randrange(256)
                )
            if rng.random() < 0.2:
                data = data[: rng.randrange(len(data))]
            try:
                _walk(bytes(data))
            except ArchiveError as e:
                self.assertNotIn("\n", str(e))
