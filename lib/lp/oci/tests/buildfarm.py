# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Helpers for tests that take OCI builds through a real builder.

Images and archives are made in code with `lpbuildd.tests.archivebuilder`;
a builder files them the new way (`file_oci_upload`: a real
`OCIBuildManager.gatherResults`) or the old way (`file_legacy_upload`:
manifest.json, digests.json, ``<config>.json`` and ``<layer_id>.tar.gz``
as launchpad-buildd before Docker 25 did).
"""

__all__ = [
    "BuildFarmTestMixin",
    "OCIBuildFarmLayer",
    "SQLiteOCIBuildFarmLayer",
    "file_legacy_upload",
    "file_oci_upload",
    "librarian_contents",
    "make_oci_upload_dir",
    "make_test_image",
    "process_build_upload",
    "upload_files_dir",
    "write_archive",
]

import gzip
import hashlib
import json
import os
import tempfile

from fixtures import TempDir

from lp.archiveuploader.uploadprocessor import UploadProcessor
from lp.buildmaster.interactor import BuilderWorker, RetryPolicy
from lp.oci.model.ocirecipebuildbehaviour import OCIRecipeBuildBehaviour
from lp.oci.scripts.run import build_on_builder
from lp.services.librarian.storage import get_librarian_storage
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)
from lpbuildd.ociimage.gather import gather
from lpbuildd.testing.layers import BuilderLayer
from lpbuildd.tests.archivebuilder import (
    docker25_classic,
    make_image,
    make_layer,
)
from ocitypes.filenames import upload_file_name


def make_test_image(top_seed=3, base_size=32 * 1024):
    """A three-layer image; only the top layer depends on ``top_seed``."""
    return make_image(
        layers=[
            make_layer(seed=1, size=base_size),
            make_layer(seed=2, size=base_size // 4),
            make_layer(seed=top_seed),
        ],
        tags=("example.com/app:latest",),
    )


def write_archive(directory, images, name="save.tar"):
    """Write a Docker 25+ ``docker save`` archive of ``images``."""
    path = os.path.join(directory, name)
    docker25_classic(images).write(path)
    return path


def file_oci_upload(builder, build_cookie, archive, work_dir):
    """Have ``builder`` gather ``archive``; return the `GatherResult`."""
    build_dir = tempfile.mkdtemp(dir=work_dir, prefix="build-")
    return build_on_builder(
        builder, build_cookie, archive, build_dir, "example.com/app:latest"
    )


def make_oci_upload_dir(images, work_dir, archive=None):
    """An upload directory as the build farm collects it (flat names).

    :param archive: The path of an archive to gather instead of a Docker
        25+ save of ``images``.
    """
    if archive is None:
        archive = write_archive(work_dir, images, name="upload.tar")
    layout = os.path.join(work_dir, "layout")
    gather(archive, layout, jobs=1)
    upload = os.path.join(work_dir, "upload")
    os.mkdir(upload)
    for dirpath, _, filenames in os.walk(layout):
        for filename in filenames:
            path = os.path.join(dirpath, filename)
            name = upload_file_name(os.path.relpath(path, layout))
            os.rename(path, os.path.join(upload, name))
    return upload


def upload_files_dir(build, upload_path):
    """Where the files of ``build`` sit in its upload's leaf directory."""
    return os.path.join(
        upload_path, str(build.archive.id), build.distribution.name
    )


def process_build_upload(upload_path, dry_run=False):
    """Process the upload at ``<root>/incoming/<leaf>`` as process-upload.

    :return: The `UploadStatusEnum`, or None.
    """
    fsroot = os.path.dirname(upload_path)
    return UploadProcessor(
        os.path.dirname(fsroot), dry_run=dry_run
    ).processBuildUpload(fsroot, os.path.basename(upload_path))


def legacy_upload_files(image, pulled=()):
    """The files of a legacy upload of ``image``: {name: bytes}.

    :param pulled: positions of layers that docker pulled: digests.json
        gives them a ``sha256:``-prefixed registry digest that is not
        the digest of the ``.tar.gz`` file; the others get the bare hex
        digest of their file, as launchpad-buildd wrote them.
    """
    config_name = hashlib.sha256(image.config).hexdigest() + ".json"
    files = {config_name: image.config}
    layer_paths = []
    layer_digests = {}
    for position, (diff_id, layer) in enumerate(
        zip(image.diff_ids, image.layers)
    ):
        layer_id = hashlib.sha256(b"v1 " + diff_id.encode()).hexdigest()
        compressed = gzip.compress(layer, mtime=0)
        files[f"{layer_id}.tar.gz"] = compressed
        if position in pulled:
            digest = "sha256:" + hashlib.sha256(b"reg" + layer).hexdigest()
        else:
            digest = hashlib.sha256(compressed).hexdigest()
        layer_digests[diff_id] = {
            "digest": digest,
            "source": "",
            "layer_id": layer_id,
        }
        layer_paths.append(f"{layer_id}/layer.tar")
    manifest = [
        {"Config": config_name, "RepoTags": None, "Layers": layer_paths}
    ]
    files["manifest.json"] = json.dumps(manifest).encode()
    files["digests.json"] = json.dumps([layer_digests]).encode()
    return files


def file_legacy_upload(builder, build_cookie, image, work_dir, pulled=()):
    """File a legacy upload of ``image`` with ``builder``.

    :return: The {name: bytes} filed.
    """
    files = legacy_upload_files(image, pulled=pulled)
    directory = tempfile.mkdtemp(dir=work_dir, prefix="legacy-")
    builder.startBuild(build_cookie)
    for name, data in files.items():
        path = os.path.join(directory, name)
        with open(path, "wb") as f:
            f.write(data)
        builder.addWaitingFile(path)
    builder.buildComplete("OK")
    return files


def librarian_contents():
    """The sha256 of every content the librarian stores."""
    root = get_librarian_storage().root
    found = set()
    for name in os.listdir(root):
        if name == "incoming":
            continue
        found.update(os.listdir(os.path.join(root, name)))
    return found


class OCIBuildFarmLayer(LaunchpadZopelessLayer, BuilderLayer):
    """PostgreSQL, a librarian and a real builder."""

    @classmethod
    def setUp(cls):
        pass

    @classmethod
    def tearDown(cls):
        pass

    @classmethod
    def testSetUp(cls):
        pass

    @classmethod
    def testTearDown(cls):
        pass


class SQLiteOCIBuildFarmLayer(SQLiteLaunchpadZopelessLayer, BuilderLayer):
    """SQLite, a librarian and a real builder."""

    @classmethod
    def setUp(cls):
        pass

    @classmethod
    def tearDown(cls):
        pass

    @classmethod
    def testSetUp(cls):
        pass

    @classmethod
    def testTearDown(cls):
        pass


class BuildFarmTestMixin:
    """The layer's real builder, and behaviours whose worker talks to it.

    For tests on `OCIBuildFarmLayer` or `SQLiteOCIBuildFarmLayer`.
    """

    def setUpBuildFarm(self):
        self.work_dir = self.useFixture(TempDir()).path
        self.builder_server = BuilderLayer.server
        self.builder = BuilderLayer.builder
        self.upload_root = os.path.join(self.work_dir, "uploads")

    def makeBehaviour(self, build, url=None, **kwargs):
        worker = BuilderWorker(
            url or self.builder_server.url,
            retry_policy=RetryPolicy(attempts=3, initial_delay=0),
            timeout=10,
        )
        self.addCleanup(worker.close)
        behaviour = OCIRecipeBuildBehaviour(
            build, upload_root=self.upload_root, **kwargs
        )
        behaviour.setBuilder(None, worker)
        return behaviour

    def collect(self, behaviour):
        """Hand the builder's status to the behaviour, as the master does."""
        return behaviour.handleStatus(behaviour._worker.status())

    def assertNothingCollected(self):
        for state in ("grabbing", "incoming"):
            directory = os.path.join(self.upload_root, state)
            if os.path.isdir(directory):
                self.assertEqual([], os.listdir(directory))
