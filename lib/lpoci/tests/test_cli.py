# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the `lp-oci` command line, run as a real process."""

__all__ = []

import io
import itertools
import json
import os
import random
import subprocess
import sys

from fixtures import TempDir
from testtools import TestCase

from lpbuildd.ociimage.tests.helpers import CHILD_ENV
from lpbuildd.tests.archivebuilder import (
    corrupt_member,
    docker25_classic,
    make_image,
    make_layer,
)
from lpoci.cli import Progress
from ocitypes.descriptor import MediaType


def lp_oci(*args, stdin=None):
    proc = subprocess.run(
        [sys.executable, "-m", "lpoci.cli", *args],
        input=stdin,
        capture_output=True,
        env=CHILD_ENV,
    )
    return (
        proc.returncode,
        proc.stdout.decode("UTF-8"),
        proc.stderr.decode("UTF-8"),
    )


class TestGatherCommand(TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(TempDir()).path
        self.image = make_image(
            layers=[make_layer(seed=1), make_layer(seed=2)],
            tags=("example.com/app:1.0",),
        )
        self.archive = docker25_classic([self.image])
        self.path = os.path.join(self.tmp, "save.tar")
        self.archive.write(self.path)
        self.out = os.path.join(self.tmp, "out")

    def assertFailedCleanly(self, status, stderr, fragment):
        self.assertEqual(1, status, stderr)
        (line,) = stderr.splitlines()
        self.assertTrue(line.startswith("lp-oci: error: "), line)
        self.assertIn(fragment, line)
        self.assertEqual(["save.tar"], sorted(os.listdir(self.tmp)))

    def test_summary(self):
        status, stdout, stderr = lp_oci("gather", self.path, "-o", self.out)
        self.assertEqual(0, status, stderr)
        self.assertEqual("", stderr)
        fields = dict(
            line.split(": ", 1)
            for line in stdout.splitlines()
            if not line.startswith(" ")
        )
        self.assertEqual("docker25-classic", fields["format"])
        self.assertEqual("1", fields["images"])
        self.assertEqual("2", fields["layers"])
        self.assertEqual(str(os.path.getsize(self.path)), fields["bytes in"])
        blobs = os.path.join(self.out, "blobs", "sha256")
        self.assertEqual(
            str(
                sum(
                    os.path.getsize(os.path.join(blobs, name))
                    for name in os.listdir(blobs)
                )
            ),
            fields["bytes out"],
        )
        self.assertGreaterEqual(float(fields["seconds"]), 0)
        self.assertIn("example.com/app:1.0", stdout)

    def test_json(self):
        status, stdout, stderr = lp_oci(
            "gather", self.path, "-o", self.out, "--json"
        )
        self.assertEqual(0, status, stderr)
        report = json.loads(stdout)
        self.assertEqual("docker25-classic", report["format"])
        self.assertEqual(os.path.getsize(self.path), report["bytes_in"])
        (image,) = report["images"]
        self.assertEqual(["example.com/app:1.0"], image["names"])
        self.assertEqual(
            self.image.diff_ids,
            [layer["diff_id"] for layer in image["layers"]],
        )
        with open(os.path.join(self.out, "index.json")) as f:
            index = json.load(f)
        self.assertEqual(
            [entry["digest"] for entry in index["manifests"]],
            [entry["digest"] for entry in report["index"]],
        )
        blobs = os.path.join(self.out, "blobs", "sha256")
        for layer in image["layers"]:
            self.assertEqual(
                layer["size"],
                os.path.getsize(os.path.join(blobs, layer["digest"][7:])),
            )
        self.assertEqual([], report["skipped"])

    def test_stdin_and_zstd(self):
        with open(self.path, "rb") as f:
            data = f.read()
        status, _, stderr = lp_oci(
            "gather",
            "-",
            "-o",
            self.out,
            "--compression",
            "zstd",
            "--jobs",
            "1",
            stdin=data,
        )
        self.assertEqual(0, status, stderr)
        with open(os.path.join(self.out, "index.json")) as f:
            digest = json.load(f)["manifests"][0]["digest"]
        with open(os.path.join(self.out, "blobs", "sha256", digest[7:])) as f:
            manifest = json.load(f)
        self.assertEqual(
            [MediaType.OCI_LAYER_ZSTD] * 2,
            [layer["mediaType"] for layer in manifest["layers"]],
        )

    def test_corrupt_archive(self):
        corrupt_member(
            self.archive, "blobs/sha256/" + self.image.diff_ids[0][7:]
        )
        self.archive.write(self.path)
        status, stdout, stderr = lp_oci("gather", self.path, "-o", self.out)
        self.assertFailedCleanly(status, stderr, "does not match")
        self.assertEqual("", stdout)

    def test_truncated_archive_from_stdin(self):
        data = self.archive.truncated(5000)
        status, _, stderr = lp_oci("gather", "-", "-o", self.out, stdin=data)
        self.assertFailedCleanly(status, stderr, "truncated")

    def test_missing_archive(self):
        status, _, stderr = lp_oci(
            "gather", os.path.join(self.tmp, "nope.tar"), "-o", self.out
        )
        self.assertFailedCleanly(status, stderr, "nope.tar")

    def test_output_not_empty(self):
        os.mkdir(self.out)
        with open(os.path.join(self.out, "keep"), "w") as f:
            f.write("mine")
        status, _, stderr = lp_oci("gather", self.path, "-o", self.out)
        self.assertEqual(1, status)
        self.assertIn("not an empty directory", stderr)
        self.assertEqual(["keep"], os.listdir(self.out))

    def test_usage_error(self):
        status, _, stderr = lp_oci("gather", self.path)
        self.assertEqual(2, status)
        self.assertNotIn("Traceback", stderr)


class FakeTerminal(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def _redraws(stream):
    """The lines a `Progress` drew on `stream`."""
    return [line for line in stream.getvalue().split("\r") if line]


class TestProgress(TestCase):
    def test_terminal(self):
        stream = FakeTerminal(True)
        progress = Progress(stream, total=1000)
        progress.last = -1.0  # due at once
        progress(500)
        self.assertIn(" 50% of 0.0 MB", stream.getvalue())
        progress.clear()
        self.assertTrue(stream.getvalue().endswith("\r\033[K"))

    def test_redraws_at_most_every_interval(self):
        # A clock that moves 0.125 s per reading: every other report
        # is drawn, however often gather reports.
        ticks = itertools.count(0.0, 0.125)
        stream = FakeTerminal(True)
        progress = Progress(stream, total=1000, clock=lambda: next(ticks))
        for done in range(100, 1001, 100):
            progress.report("gather", done, 1000)
        drawn = [int(line.split("%")[0]) for line in _redraws(stream)]
        self.assertEqual([20, 40, 60, 80, 100], drawn)
        self.assertLessEqual(Progress.INTERVAL, 0.5)

    def test_gather_redraws_inside_one_large_member(self):
        # gather reports every MiB it reads, so the display moves while
        # one 12 MiB layer is read (a clock moving a second per reading
        # stands in for a slow machine).
        from lpbuildd.ociimage.gather import gather

        rng = random.Random(1)
        layer = make_layer(files={"big.bin": rng.randbytes(12 << 20)})
        data = docker25_classic(make_image(layers=[layer])).to_bytes()
        tmp = self.useFixture(TempDir()).path
        path = os.path.join(tmp, "archive.tar")
        with open(path, "wb") as f:
            f.write(data)
        for jobs in (1, 2):
            ticks = itertools.count(0.0, 1.0)
            stream = FakeTerminal(True)
            progress = Progress(stream, clock=lambda: next(ticks))
            gather(
                path,
                os.path.join(tmp, f"out-{jobs}"),
                jobs=jobs,
                progress=progress.report,
            )
            percents = [int(p.split("%")[0]) for p in _redraws(stream)]
            self.assertEqual(sorted(percents), percents)
            # The layer is all but 0.1% of the archive.
            inside = [p for p in percents if 0 < p < 100]
            self.assertGreaterEqual(len(inside), 10, percents)

    def test_not_a_terminal(self):
        stream = FakeTerminal(False)
        progress = Progress(stream, total=1000)
        progress(500)
        progress.clear()
        self.assertEqual("", stream.getvalue())


class TestHashPasswordCommand(TestCase):
    def test_hash_from_stdin(self):
        from lp.services.webapp.wsgi import PASSWORD_SCHEME, Account

        code, out, err = lp_oci("hash-password", stdin=b"pa:ss word\n")
        self.assertEqual((0, ""), (code, err))
        hashed = out.strip()
        self.assertTrue(hashed.startswith(PASSWORD_SCHEME + "$"))
        account = Account("bob", hashed)
        self.assertTrue(account.checkPassword("pa:ss word"))
        self.assertFalse(account.checkPassword("pa:ss word\n"))

    def test_json(self):
        code, out, err = lp_oci("hash-password", "--json", stdin=b"pw\n")
        self.assertEqual((0, ""), (code, err))
        self.assertEqual(["password_hash"], list(json.loads(out)))

    def test_empty_password_refused(self):
        self.assertEqual(
            (1, "", "lp-oci: error: empty password\n"),
            lp_oci("hash-password", stdin=b"\n"),
        )
