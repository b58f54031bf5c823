# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""skopeo reads the OCI layouts that `gather` writes.

`skopeo inspect oci:DIR:tag` must report the layers we wrote, and
`skopeo copy oci:DIR:tag oci:OTHER:tag` must succeed (skopeo verifies
every blob as it copies).  Skipped when skopeo is not installed.
"""

__all__ = []

import json
import os
import shutil
import subprocess

from lpbuildd.ociimage.tests.helpers import GatherTestCase
from lpbuildd.tests.archivebuilder import (
    EMPTY_LAYER,
    docker25_classic,
    docker25_containerd,
    legacy_docker_save,
    make_image,
    make_layer,
    oci_archive,
)
from ocitypes.testing import tool_missing


def image():
    return make_image(
        layers=[
            make_layer(seed=1),
            make_layer(seed=2, size=50000),
            EMPTY_LAYER,
        ],
        tags=("example.com/app:latest",),
    )


class TestSkopeoReadsOutput(GatherTestCase):
    def setUp(self):
        super().setUp()
        if shutil.which("skopeo") is None:
            tool_missing(self, "skopeo is not installed")

    def skopeo(self, *args):
        process = subprocess.run(
            ["skopeo", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=60,
        )
        self.assertEqual(
            0, process.returncode, process.stderr.decode(errors="replace")
        )
        return process.stdout

    def check(self, builder, compression="gzip", tag="latest"):
        result, outdir = self.gather(
            builder.to_bytes(), compression=compression
        )
        (out,) = self.assertValidLayout(outdir).images
        info = json.loads(self.skopeo("inspect", f"oci:{outdir}:{tag}"))
        self.assertEqual(
            [desc["digest"] for desc, _ in out.layers], info["Layers"]
        )
        self.assertEqual(builder.images[0].architecture, info["Architecture"])
        config = json.loads(
            self.skopeo("inspect", "--config", f"oci:{outdir}:{tag}")
        )
        self.assertEqual(
            builder.images[0].diff_ids, config["rootfs"]["diff_ids"]
        )
        other = os.path.join(self.tmp, "copy")
        self.skopeo(
            "--insecure-policy",
            "copy",
            "--quiet",
            f"oci:{outdir}:{tag}",
            f"oci:{other}:{tag}",
        )
        copied = json.loads(self.skopeo("inspect", f"oci:{other}:{tag}"))
        self.assertEqual(info["Layers"], copied["Layers"])
        return info

    def test_legacy_docker_save(self):
        self.check(legacy_docker_save(image()))

    def test_legacy_docker_save_zstd(self):
        self.check(legacy_docker_save(image()), compression="zstd")

    def test_docker25_classic(self):
        self.check(docker25_classic(image()))

    def test_docker25_0_0(self):
        self.check(docker25_classic(image(), version="25.0.0"))

    def test_docker25_containerd(self):
        for media_types in ("oci", "mixed"):
            builder = docker25_containerd(image(), media_types=media_types)
            self.check(builder)

    def test_docker25_containerd_docker_media_types(self):
        # The containerd store keeps Docker Hub's schema 2 manifests;
        # skopeo's oci: transport skips index entries that are not OCI
        # manifests, so gather rewrites them as OCI manifests.
        self.check(docker25_containerd(image(), media_types="docker"))

    def test_oci_archive(self):
        for layer_compression in (None, "gzip", "zstd", "estargz"):
            self.check(
                oci_archive(image(), layer_compression=layer_compression)
            )
