# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the archives a build's images are downloaded as.

Builds get their files the way Launchpad stores them: an archive made
in code is gathered into an OCI upload (or filed as a legacy upload)
and processed by `UploadProcessor`.  The archives are then read back by
tarfile, by this project's own `gather` and by skopeo.
"""

__all__ = []

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import tarfile

import transaction
from fixtures import TempDir
from zope.component import getUtility

from lp.archiveuploader.uploadprocessor import UploadStatusEnum
from lp.buildmaster.enums import BuildStatus
from lp.oci.interfaces.ociarchive import (
    CannotExportOCIArchive,
    IOCIArchive,
    IOCIArchiveSet,
    OCIArchiveError,
    OCIArchiveFormat,
)
from lp.oci.model.ociarchive import _tar_header
from lp.oci.model.ociregistryclient import make_push_plan
from lp.oci.tests.buildfarm import (
    legacy_upload_files,
    make_oci_upload_dir,
    make_test_image,
    process_build_upload,
    upload_files_dir,
)
from lp.services.librarian.storage import get_librarian_storage
from lp.testing import TestCaseWithFactory
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)
from lpbuildd.ociimage.gather import gather
from lpbuildd.tests.archivebuilder import (
    docker25_containerd,
    make_image,
    make_layer,
)
from ocitypes.descriptor import MediaType
from ocitypes.digest import Digest
from ocitypes.testing import tool_missing

OCI = OCIArchiveFormat.OCI
DOCKER = OCIArchiveFormat.DOCKER


def archive_bytes(archive, start=0, stop=None):
    return b"".join(archive.iterBytes(start, stop))


def tar_members(data):
    """{name: content} of a tar, in order (directories map to None)."""
    members = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for info in tar:
            if info.isdir():
                members[info.name] = None
            else:
                members[info.name] = tar.extractfile(info).read()
    return members


class ArchiveTestMixin:
    """Builds whose files went through upload processing."""

    def setUp(self):
        super().setUp()
        self.work_dir = self.useFixture(TempDir()).path
        self.upload_root = os.path.join(self.work_dir, "uploads")

    def _leaf(self, build):
        build.updateStatus(BuildStatus.UPLOADING)
        transaction.commit()
        leaf = os.path.join(
            self.upload_root,
            "incoming",
            build.getUploadDirLeaf(build.build_cookie),
        )
        return leaf, upload_files_dir(build, leaf)

    def _process(self, build, leaf):
        result = process_build_upload(leaf)
        self.assertEqual(
            UploadStatusEnum.ACCEPTED, result, build.failure_reason
        )
        return build

    def makeBuild(self, images=None, archive=None, **kw):
        """A FULLYBUILT build of ``images`` (an OCI upload).

        :param archive: An `ArchiveBuilder` the builder gathers instead
            of a Docker 25+ save of ``images``.
        """
        build = self.factory.makeOCIRecipeBuild(**kw)
        leaf, target = self._leaf(build)
        work = self.useFixture(TempDir()).path
        if archive is not None:
            path = os.path.join(work, "source.tar")
            archive.write(path)
            archive = path
        made = make_oci_upload_dir(
            images or [make_test_image(base_size=8192)], work, archive=archive
        )
        os.makedirs(os.path.dirname(target))
        os.rename(made, target)
        return self._process(build, leaf)

    def makeLegacyBuild(self, image=None, pulled=(1,), more_images=(), **kw):
        """A FULLYBUILT build of ``image`` from a legacy upload."""
        build = self.factory.makeOCIRecipeBuild(**kw)
        leaf, target = self._leaf(build)
        os.makedirs(target)
        image = image or make_test_image(base_size=8192)
        files = legacy_upload_files(
            image, pulled=pulled, more_images=more_images
        )
        for name, data in files.items():
            with open(os.path.join(target, name), "wb") as f:
                f.write(data)
        return self._process(build, leaf)

    def getArchive(self, build, format=OCI):
        return getUtility(IOCIArchiveSet).getArchive(build, format)

    def writeArchive(self, archive, name=None):
        path = os.path.join(
            self.work_dir, name or f"{archive.format.name.lower()}.tar"
        )
        with open(path, "wb") as f:
            for chunk in archive.iterBytes():
                f.write(chunk)
        return path


class TestOCIArchive(ArchiveTestMixin, TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def test_implements_interface(self):
        archive = self.getArchive(self.makeBuild())
        self.assertTrue(IOCIArchive.providedBy(archive))
        self.assertEqual("application/x-tar", archive.content_type)
        self.assertEqual(
            f"{archive.build.recipe.name}-{archive.build.id}.oci.tar",
            archive.filename,
        )

    def test_oci_archive_is_the_stored_blobs(self):
        build = self.makeBuild()
        archive = self.getArchive(build, OCI)
        data = archive_bytes(archive)
        self.assertEqual(archive.size, len(data))
        members = tar_members(data)
        self.assertEqual(
            list(members), [n.rstrip("/") for n in archive.member_names]
        )
        self.assertEqual(
            ["oci-layout", "index.json", "blobs", "blobs/sha256"],
            list(members)[:4],
        )
        self.assertEqual(
            {"imageLayoutVersion": "1.0.0"},
            json.loads(members["oci-layout"]),
        )
        (image,) = archive.images
        (manifest_digest, manifest), *_ = build.image_manifests
        self.assertEqual(manifest_digest, image.manifest.digest)
        expected = [image.manifest.digest, image.config.digest] + [
            layer.digest for layer in image.layers
        ]
        self.assertEqual(
            [f"blobs/sha256/{d.hex}" for d in expected],
            list(members)[4:],
        )
        for name, content in list(members.items())[4:]:
            _, lfa, _ = build.getLayerFileByDigest(
                Digest("sha256", name.rsplit("/", 1)[1])
            )
            self.assertEqual(lfa.read(), content)
            lfa.close()
        self.assertEqual(
            [layer["digest"] for layer in manifest["layers"]],
            [str(layer.digest) for layer in image.layers],
        )

    def test_index_has_names_and_platform(self):
        archive = self.getArchive(self.makeBuild())
        index = json.loads(tar_members(archive_bytes(archive))["index.json"])
        (image,) = archive.images
        self.assertEqual(
            {
                "schemaVersion": 2,
                "mediaType": MediaType.OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": MediaType.OCI_MANIFEST,
                        "digest": str(image.manifest.digest),
                        "size": image.manifest.size,
                        "annotations": {
                            "io.containerd.image.name": (
                                "example.com/app:latest"
                            ),
                            "org.opencontainers.image.ref.name": "latest",
                        },
                        "platform": {"architecture": "amd64", "os": "linux"},
                    }
                ],
            },
            index,
        )

    def test_docker_archive(self):
        archive = self.getArchive(self.makeBuild(), DOCKER)
        data = archive_bytes(archive)
        self.assertEqual(archive.size, len(data))
        members = tar_members(data)
        self.assertEqual(
            ["oci-layout", "index.json", "manifest.json", "blobs"],
            list(members)[:4],
        )
        (image,) = archive.images
        self.assertEqual(
            [
                {
                    "Config": f"blobs/sha256/{image.config.digest.hex}",
                    "RepoTags": ["example.com/app:latest"],
                    "Layers": [
                        f"blobs/sha256/{layer.digest.hex}"
                        for layer in image.layers
                    ],
                }
            ],
            json.loads(members["manifest.json"]),
        )
        oci = tar_members(archive_bytes(self.getArchive(archive.build, OCI)))
        self.assertEqual(oci["index.json"], members["index.json"])

    def test_headers_are_fixed(self):
        data = archive_bytes(self.getArchive(self.makeBuild(), DOCKER))
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar:
                self.assertEqual(
                    (0, 0, 0, "", "", 0o755 if info.isdir() else 0o644),
                    (
                        info.mtime,
                        info.uid,
                        info.gid,
                        info.uname,
                        info.gname,
                        info.mode,
                    ),
                )
        # ustar, with the two zero blocks that end a tar.
        self.assertEqual(b"ustar\x0000", data[257:265])
        self.assertEqual(bytes(1024), data[-1024:])

    def test_same_build_same_bytes(self):
        build = self.makeBuild()
        for format in (OCI, DOCKER):
            first = hashlib.sha256(
                archive_bytes(self.getArchive(build, format))
            ).digest()
            transaction.commit()
            second = hashlib.sha256(
                archive_bytes(self.getArchive(build, format))
            ).digest()
            self.assertEqual(first, second)

    def test_every_range_is_a_slice_of_the_whole(self):
        archive = self.getArchive(self.makeBuild(), DOCKER)
        whole = archive_bytes(archive)
        size = archive.size
        # Every member boundary, either side, and random ranges.
        edges = {0, size}
        offset = 0
        for start, length, _ in archive._segments:
            edges.update((start - 1, start, start + 1, start + length - 1))
        edges = sorted(e for e in edges if 0 <= e <= size)
        rng = random.Random(42)
        ranges = [(a, b) for a in edges for b in edges if a <= b][::7]
        ranges += [
            tuple(sorted((rng.randrange(size + 1), rng.randrange(size + 1))))
            for _ in range(50)
        ]
        for start, stop in ranges:
            chunks = list(archive.iterBytes(start, stop))
            self.assertTrue(all(chunks), (start, stop))
            self.assertEqual(
                whole[start:stop], b"".join(chunks), (start, stop, offset)
            )
        self.assertEqual(whole[1000:], archive_bytes(archive, 1000))

    def test_range_outside_the_archive(self):
        archive = self.getArchive(self.makeBuild())
        for start, stop in ((-1, 10), (10, 5), (0, archive.size + 1)):
            self.assertRaises(ValueError, archive.iterBytes, start, stop)

    def test_range_reads_only_what_it_needs(self):
        build = self.makeBuild()
        archive = self.getArchive(build)
        image = archive.images[0]
        opened = []
        _, lfa, _ = build.getLayerFileByDigest(image.layers[-1].digest)
        original = type(lfa).open

        def open_spy(alias, *args, **kwargs):
            opened.append(alias.filename)
            return original(alias, *args, **kwargs)

        type(lfa).open = open_spy
        self.addCleanup(setattr, type(lfa), "open", original)
        self.assertEqual(
            b"\0" * 1024, archive_bytes(archive, archive.size - 1024)
        )
        self.assertEqual([], opened)
        last = archive._segments[-2]
        archive_bytes(archive, last[0] + 10, last[0] + 20)
        self.assertEqual([lfa.filename], opened)

    def test_multi_image_build_keeps_every_image(self):
        base = make_layer(seed=1, size=4096)
        images = [
            make_image(layers=[base, make_layer(seed=2)]),
            make_image(
                layers=[base, make_layer(seed=3)],
                architecture="arm64",
                variant="v8",
                tags=("example.com/app:arm", "ubuntu:24.04"),
            ),
        ]
        build = self.makeBuild(images)
        archive = self.getArchive(build, DOCKER)
        self.assertEqual(2, len(archive.images))
        members = tar_members(archive_bytes(archive))
        manifest = json.loads(members["manifest.json"])
        self.assertEqual(
            [
                ["example.com/app:latest"],
                ["example.com/app:arm", "ubuntu:24.04"],
            ],
            [entry["RepoTags"] for entry in manifest],
        )
        index = json.loads(members["index.json"])
        self.assertEqual(
            [
                ("example.com/app:latest", "latest", "linux/amd64"),
                ("example.com/app:arm", "arm", "linux/arm64/v8"),
                ("docker.io/library/ubuntu:24.04", "24.04", "linux/arm64/v8"),
            ],
            [
                (
                    entry["annotations"]["io.containerd.image.name"],
                    entry["annotations"]["org.opencontainers.image.ref.name"],
                    "/".join(
                        entry["platform"][k]
                        for k in ("os", "architecture", "variant")
                        if k in entry["platform"]
                    ),
                )
                for entry in index["manifests"]
            ],
        )
        # The shared base layer is in the archive once.
        blobs = [n for n in members if n.startswith("blobs/sha256/")]
        self.assertEqual(len(set(blobs)), len(blobs))
        self.assertEqual(2 + 2 + 3, len(blobs))

    def test_compressed_layers_keep_the_registry_digests(self):
        # From the containerd image store the builder keeps the
        # registry's manifest and gzip layers byte-exact; so does the
        # download.
        image = make_test_image(base_size=8192)
        source = docker25_containerd(image, other_platforms=())
        build = self.makeBuild(archive=source)
        archive = self.getArchive(build, DOCKER)
        (archived,) = archive.images
        self.assertEqual(
            source.info["manifest_digest"], str(archived.manifest.digest)
        )
        gzipped = image.with_compression("gzip")
        self.assertEqual(
            gzipped.layer_digests, [str(d.digest) for d in archived.layers]
        )
        self.assertEqual(("example.com/app:latest",), archived.names)
        members = tar_members(archive_bytes(archive))
        (docker_entry,) = json.loads(members["manifest.json"])
        self.assertEqual(["example.com/app:latest"], docker_entry["RepoTags"])

    def test_a_tag_goes_to_one_image(self):
        images = [
            make_image(layers=[make_layer(seed=n)], tags=("ubuntu:24.04",))
            for n in (1, 2)
        ]
        archive = self.getArchive(self.makeBuild(images), DOCKER)
        members = tar_members(archive_bytes(archive))
        self.assertEqual(
            [["ubuntu:24.04"], None],
            [e["RepoTags"] for e in json.loads(members["manifest.json"])],
        )

    def test_legacy_build(self):
        image = make_test_image(base_size=8192)
        build = self.makeLegacyBuild(image)
        archive = self.getArchive(build, DOCKER)
        data = archive_bytes(archive)
        self.assertEqual(archive.size, len(data))
        members = tar_members(data)
        (archived,) = archive.images
        manifest = json.loads(
            members[f"blobs/sha256/{archived.manifest.digest.hex}"]
        )
        config = members[f"blobs/sha256/{archived.config.digest.hex}"]
        # The config is byte-exact: the image keeps its ID.
        self.assertEqual(image.config, config)
        self.assertEqual(image.config_digest, str(archived.config.digest))
        files = legacy_upload_files(image, pulled=(1,))
        stored = {
            str(Digest.of_bytes(data)): data
            for name, data in files.items()
            if name.endswith(".tar.gz")
        }
        self.assertEqual(
            {
                "schemaVersion": 2,
                "mediaType": MediaType.DOCKER_MANIFEST,
                "config": {
                    "mediaType": MediaType.DOCKER_CONFIG,
                    "digest": image.config_digest,
                    "size": len(image.config),
                },
                "layers": [
                    {
                        "mediaType": MediaType.DOCKER_LAYER_GZIP,
                        "digest": digest,
                        "size": len(stored[digest]),
                    }
                    for digest in [str(d.digest) for d in archived.layers]
                ],
            },
            manifest,
        )
        # The manifest is the one a registry push of the build sends,
        # byte for byte: the archive and the registry agree on the
        # image's digest.
        (pushed,) = make_push_plan(build).manifests
        self.assertEqual(pushed.digest, archived.manifest.digest)
        self.assertEqual(
            pushed.content,
            members[f"blobs/sha256/{archived.manifest.digest.hex}"],
        )
        for layer, diff_id in zip(archived.layers, image.diff_ids):
            content = members[f"blobs/sha256/{layer.digest.hex}"]
            self.assertEqual(
                diff_id, str(Digest.of_bytes(gzip.decompress(content)))
            )
        self.assertEqual(
            [None],
            [e["RepoTags"] for e in json.loads(members["manifest.json"])],
        )
        self.assertEqual(data, archive_bytes(self.getArchive(build, DOCKER)))

    def test_not_fullybuilt(self):
        build = self.factory.makeOCIRecipeBuild()
        error = self.assertRaises(
            CannotExportOCIArchive, self.getArchive, build
        )
        self.assertEqual(
            f"Build {build.id} is NEEDSBUILD, not FULLYBUILT", str(error)
        )

    def test_superseded_build_is_exported(self):
        # A newer build was pushed to its tags; its own images are kept.
        build = self.makeBuild()
        build.updateStatus(
            BuildStatus.SUPERSEDED, force_invalid_transition=True
        )
        self.assertEqual(build, self.getArchive(build).build)

    def test_missing_blob(self):
        build = self.makeBuild()
        image = self.getArchive(build).images[0]
        sha256 = image.layers[0].digest.hex
        get_librarian_storage().remove(sha256)
        error = self.assertRaises(OCIArchiveError, self.getArchive, build)
        self.assertEqual(
            f"Layer sha256:{sha256} is not in the librarian", str(error)
        )

    def test_file_shorter_than_recorded(self):
        build = self.makeBuild()
        archive = self.getArchive(build)
        path = get_librarian_storage().getPath(
            archive.images[0].layers[0].digest.hex
        )
        with open(path, "rb") as f:
            data = f.read()
        os.chmod(path, 0o644)
        os.unlink(path)
        with open(path, "wb") as f:
            f.write(data[:-10])
        error = self.assertRaises(OCIArchiveError, archive_bytes, archive)
        self.assertIn("is shorter than recorded", str(error))

    def test_pax_header_for_huge_members(self):
        header = _tar_header("blobs/sha256/" + "a" * 64, 1 << 34)
        self.assertEqual(3 * 512, len(header))
        info = tarfile.TarInfo.frombuf(header[1024:], "utf-8", "strict")
        self.assertEqual("blobs/sha256/" + "a" * 64, info.name)
        with tarfile.open(
            fileobj=io.BytesIO(header + bytes(1024)), mode="r|"
        ) as tar:
            self.assertRaises(tarfile.ReadError, lambda: list(tar))
        self.assertEqual(512, len(_tar_header("x", (1 << 33) - 1)))


class TestOCIArchiveSQLite(TestOCIArchive):
    layer = SQLiteLaunchpadZopelessLayer


def blob_json(layout, digest):
    """A JSON blob of an OCI image layout directory, parsed."""
    path = os.path.join(layout, "blobs", "sha256", Digest.parse(digest).hex)
    with open(path) as f:
        return json.load(f)


class TestOCIArchiveReadBack(ArchiveTestMixin, TestCaseWithFactory):
    """gather and skopeo read the archives."""

    layer = SQLiteLaunchpadZopelessLayer

    def gather(self, path):
        outdir = os.path.join(
            self.work_dir, "gathered-" + os.path.basename(path)
        )
        return gather(path, outdir, jobs=1), outdir

    def skopeo(self, *args):
        if shutil.which("skopeo") is None:
            tool_missing(self, "skopeo is not installed")
        process = subprocess.run(
            ["skopeo", "--insecure-policy", *args],
            capture_output=True,
            timeout=60,
        )
        self.assertEqual(
            0, process.returncode, process.stderr.decode(errors="replace")
        )
        return process.stdout

    def assertGathered(self, archive, path, keep_manifest):
        result, _ = self.gather(path)
        self.assertEqual(len(archive.images), len(result.images))
        for image, gathered in zip(archive.images, result.images):
            self.assertEqual(image.config.digest, gathered.config_digest)
            self.assertEqual(
                [layer.digest for layer in image.layers],
                [layer.descriptor.digest for layer in gathered.layers],
            )
        if keep_manifest:
            self.assertEqual(
                [image.manifest.digest for image in archive.images],
                [entry.digest for entry in result.index],
            )

    def test_gather_reads_both_archives(self):
        for build in (self.makeBuild(), self.makeLegacyBuild()):
            for format in (OCI, DOCKER):
                archive = self.getArchive(build, format)
                path = self.writeArchive(
                    archive, f"{build.id}-{format.name}.tar"
                )
                # gather keeps an OCI manifest byte-exact; a legacy
                # build's is a Docker one (as its push), which gather
                # writes anew as an OCI manifest.
                self.assertGathered(
                    archive,
                    path,
                    format == OCI
                    and all(
                        image.manifest.media_type == MediaType.OCI_MANIFEST
                        for image in archive.images
                    ),
                )

    def check_skopeo(self, build):
        oci = self.getArchive(build, OCI)
        docker = self.getArchive(build, DOCKER)
        (image,) = oci.images
        oci_path = self.writeArchive(oci, f"{build.id}.oci.tar")
        docker_path = self.writeArchive(docker, f"{build.id}.docker.tar")
        inspected = json.loads(
            self.skopeo("inspect", f"oci-archive:{oci_path}")
        )
        self.assertEqual(str(image.manifest.digest), inspected["Digest"])
        self.assertEqual(
            [str(layer.digest) for layer in image.layers], inspected["Layers"]
        )
        raw = self.skopeo("inspect", "--raw", f"docker-archive:{docker_path}")
        self.assertEqual(
            str(image.config.digest), json.loads(raw)["config"]["digest"]
        )
        config = json.loads(
            self.skopeo("inspect", "--config", f"docker-archive:{docker_path}")
        )
        # skopeo copies each archive to a layout, verifying every blob.
        copied = os.path.join(self.work_dir, f"copied-{build.id}")
        self.skopeo(
            "copy", f"oci-archive:{oci_path}", f"oci:{copied}:from-oci"
        )
        self.skopeo(
            "copy",
            f"docker-archive:{docker_path}",
            f"oci:{copied}:from-docker",
        )
        with open(os.path.join(copied, "index.json")) as f:
            entries = {
                e["annotations"]["org.opencontainers.image.ref.name"]: e
                for e in json.load(f)["manifests"]
            }
        copied_manifest = blob_json(copied, entries["from-oci"]["digest"])
        if image.manifest.media_type == MediaType.OCI_MANIFEST:
            # The OCI archive's image arrives unchanged, its digest too.
            self.assertEqual(
                str(image.manifest.digest), entries["from-oci"]["digest"]
            )
        else:
            # A legacy build's manifest is the Docker one its push
            # sends; an OCI layout holds only OCI manifests, so skopeo
            # converts it (and the config) there, keeping the layers.
            self.assertEqual(
                MediaType.OCI_MANIFEST, copied_manifest["mediaType"]
            )
        self.assertEqual(
            [str(layer.digest) for layer in image.layers],
            [layer["digest"] for layer in copied_manifest["layers"]],
        )

        # From the docker archive, skopeo converts the config to OCI's
        # schema and recompresses the layers: the same image is the same
        # layers, by diff_id (skopeo verified each as it decompressed).
        manifest = blob_json(copied, entries["from-docker"]["digest"])
        copied_config = blob_json(copied, manifest["config"]["digest"])
        self.assertEqual(
            config["rootfs"]["diff_ids"], copied_config["rootfs"]["diff_ids"]
        )
        return config

    def test_skopeo_reads_both_archives(self):
        image = make_test_image(base_size=8192)
        config = self.check_skopeo(self.makeBuild([image]))
        self.assertEqual(image.diff_ids, config["rootfs"]["diff_ids"])

    def test_skopeo_reads_both_archives_of_a_legacy_build(self):
        image = make_test_image(base_size=8192)
        config = self.check_skopeo(self.makeLegacyBuild(image))
        self.assertEqual(image.diff_ids, config["rootfs"]["diff_ids"])
