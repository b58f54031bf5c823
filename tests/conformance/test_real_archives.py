# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Gather every archive of the real-world corpus.

The corpus (see its README.md) lives outside the repository:
``$LP_OCI_REAL_FIXTURES`` or ``../shared/fixtures/real`` beside the
repository root.  Where it is absent the suite is skipped with a message,
unless ``$LP_OCI_REQUIRE_REAL_FIXTURES`` is ``1`` (CI sets it when the
corpus is there), in which case the absence is a failure.  Each file
has a written expectation below, judged on its merits: sound archives
are accepted (several images, links and foreign layers included, where
skopeo gives up), damaged ones refused with a message that says what is
wrong.  A file without an expectation fails the suite, so a new fixture
cannot slip in untested.
"""

__all__ = []

import csv
import hashlib
import os
from dataclasses import dataclass

from lpbuildd.ociimage.errors import (
    CorruptArchive,
    DigestMismatch,
    UnsafeArchive,
    UnsupportedArchive,
)
from lpbuildd.ociimage.tests.helpers import GatherTestCase

ROOT = os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
)
FIXTURES = os.environ.get("LP_OCI_REAL_FIXTURES") or os.path.join(
    ROOT, os.pardir, "shared", "fixtures", "real"
)
NOT_ARCHIVES = ("README.md", "SOURCES.tsv")
REQUIRED = os.environ.get("LP_OCI_REQUIRE_REAL_FIXTURES") == "1"


@dataclass(frozen=True)
class Accepted:
    format: str
    images: int
    layers: int


@dataclass(frozen=True)
class Refused:
    exception: type
    fragment: str


EXPECTATIONS = {
    "containerd-archives__busybox.amd64.tar": Accepted(
        "docker25-containerd", 1, 1
    ),
    "containerd-archives__busybox.armv7.tar": Accepted(
        "docker25-containerd", 1, 1
    ),
    "dive__test-oci-gzip-image.tar": Accepted("oci", 1, 1),
    # Trimmed: manifest.json lists one layer, the config three.
    "docker-archives__docker-save__nginx.tar": Refused(
        CorruptArchive, "has 1 layers but its config lists 3 diff_ids"
    ),
    "docker-archives__docker-save__openjdk.tar": Accepted("docker-save", 1, 1),
    "docker-archives__docker-save__top-level.tar": Accepted(
        "docker-save", 1, 1
    ),
    "docker-archives__skopeo-copy__busybox.tar": Accepted(
        "docker-archive", 1, 1
    ),
    "docker-archives__skopeo-copy__nginx-compressed-layers.tar": Refused(
        CorruptArchive, "has 1 layers but its config lists 3 diff_ids"
    ),
    "docker-archives__skopeo-copy__node-removed.tar": Accepted("oci", 1, 3),
    "docker-archives__skopeo-copy__nodes-fake.tar": Accepted(
        "docker-archive", 1, 1
    ),
    # Nothing but a "." entry.
    "docker-oci-archives__unsupported-image.tar": Refused(
        CorruptArchive, "no manifest.json or index.json"
    ),
    "ggcr__mutate_whiteout_image.tar": Accepted("docker-save", 1, 3),
    "ggcr__tarball_no_manifest.tar": Refused(
        UnsupportedArchive, "pre-1.10 docker save archive"
    ),
    "ggcr__tarball_null_manifest.tar": Refused(
        CorruptArchive, "manifest.json is null"
    ),
    # Sound, though skopeo refuses them: several images in one save
    # (with an absent foreign layer), layers reached through links.
    "ggcr__tarball_test_bundle.tar": Accepted("docker-save", 2, 2),
    "ggcr__tarball_test_image_1.tar": Accepted("docker-save", 1, 1),
    "ggcr__tarball_test_link.tar": Accepted("docker-save", 2, 3),
    "kaniko-archives__kaniko-busybox.tar": Accepted("kaniko", 1, 1),
    "npm__npm-without-lockfiles__npm7-with-package-lock-file.tar": Accepted(
        "docker25-classic+gzip", 1, 4
    ),
    "npm__npm-without-lockfiles__yarn-without-lock-file.tar": Accepted(
        "docker25-classic+gzip", 1, 4
    ),
    # Blob content does not match its digest (plus macOS junk files).
    "oci-archives__alpine-3.12.0.tar": Refused(
        DigestMismatch, "does not match its digest"
    ),
    "oci-archives__busybox-1.31.1.tar": Accepted("oci", 1, 1),
    "oci-archives__nginx.tar": Refused(
        DigestMismatch, "does not match its digest"
    ),
    "podman__docker-two-names.tar.xz": Accepted("docker-save+xz", 1, 1),
    "podman__docker-unnamed.tar.xz": Accepted("docker-save+xz", 1, 1),
    "podman__oci-non-docker-name.tar.gz": Accepted("oci+gzip", 1, 1),
    "podman__oci-unnamed.tar.gz": Accepted("oci+gzip", 1, 1),
    # The symlinks are inside a layer: content, not archive structure.
    "scalibr__layerscanning_image_symlink-attack.tar": Accepted(
        "docker-save", 1, 1
    ),
    "scalibr__layerscanning_image_symlink-cycle.tar": Accepted(
        "docker-save", 1, 1
    ),
    "scalibr__unpack_escape.tar": Refused(
        UnsafeArchive, "'/escape/poc.txt' is an absolute path"
    ),
    "stereoscope__valid-oci.tar": Accepted("oci", 1, 1),
}


def fixture_names():
    return sorted(
        name
        for name in os.listdir(FIXTURES)
        if name not in NOT_ARCHIVES and not name.startswith(".")
    )


class TestRealArchives(GatherTestCase):
    def setUp(self):
        super().setUp()
        if not os.path.isdir(FIXTURES):
            message = (
                f"real archive corpus not found at {FIXTURES} (set "
                f"LP_OCI_REAL_FIXTURES to its directory)"
            )
            if REQUIRED:
                self.fail(message + " and LP_OCI_REQUIRE_REAL_FIXTURES=1")
            self.skipTest(message)

    def check(self, name):
        expected = EXPECTATIONS[name]
        path = os.path.join(FIXTURES, name)
        with open(path, "rb") as f:
            data = f.read()
        if isinstance(expected, Refused):
            self.assertRefused(data, expected.exception, expected.fragment)
            return
        result, outdir = self.gather(data)
        layout = self.assertValidLayout(outdir)
        self.assertEqual(
            expected,
            Accepted(result.format, len(result.images), result.layer_count),
        )
        self.assertEqual(expected.images, len(layout.images))

    def test_every_fixture_has_an_expectation(self):
        self.assertEqual(sorted(EXPECTATIONS), fixture_names())

    def test_corpus_is_what_its_sources_list(self):
        # Every archive is the one SOURCES.tsv records (its size and
        # sha256), and SOURCES.tsv lists every archive: the expectations
        # above are about these bytes.  (skopeo 1.9 handles 21 of them;
        # 23 are accepted here: two sound archives it refuses.)
        with open(os.path.join(FIXTURES, "SOURCES.tsv")) as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        self.assertEqual(fixture_names(), sorted(row["file"] for row in rows))
        for row in rows:
            with open(os.path.join(FIXTURES, row["file"]), "rb") as f:
                data = f.read()
            self.assertEqual(
                (row["sha256"], int(row["size"])),
                (hashlib.sha256(data).hexdigest(), len(data)),
                row["file"],
            )

    def test_from_a_pipe(self):
        path = os.path.join(FIXTURES, "podman__docker-two-names.tar.xz")
        with open(path, "rb") as f:
            data = f.read()
        result, outdir = self.gather(data, via="pipe")
        names = sorted(
            e["annotations"]["io.containerd.image.name"]
            for e in self.assertValidLayout(outdir).index["manifests"]
        )
        self.assertEqual(
            [
                "docker.io/library/pretty-empty:latest",
                "example.com/empty:latest",
            ],
            names,
        )


def _add_tests():
    for name in EXPECTATIONS:
        method = "test_" + "".join(c if c.isalnum() else "_" for c in name)

        def test(self, name=name):
            self.check(name)

        test.__name__ = method
        test.__doc__ = f"Gather {name}."
        setattr(TestRealArchives, method, test)


_add_tests()
