# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Helpers for tests that take OCI builds through a real builder.

Images and archives are made in code with `lpbuildd.tests.archivebuilder`;
a builder files them the new way (`file_oci_upload`: a real
`OCIBuildManager.gatherResults`) or the old way (`file_legacy_upload`:
manifest.json, digests.json, ``<config>.json`` and ``<layer_id>.tar.gz``
as launchpad-buildd before Docker 25 did).  Each test gets its own real
builder on the reactor the test runner spins, and its own download
process pool (see `lp.buildmaster.tests.mock_workers`).
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
import shutil
import tempfile

from fixtures import TempDir
from twisted.internet import defer

from lp.archiveuploader.uploadprocessor import UploadProcessor
from lp.buildmaster.enums import BuildStatus, WorkerBuilderStatus
from lp.buildmaster.interactor import RetryPolicy
from lp.buildmaster.tests.mock_workers import BuilderWorkerTestMixin
from lp.oci.model.ocirecipebuildbehaviour import OCIRecipeBuildBehaviour
from lp.services.librarian.storage import get_librarian_storage
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)
from lpbuildd.dockersave import read_docker_save, write_oci_upload
from lpbuildd.oci import OCIBuildManager
from lpbuildd.replay import ReplayBackend
from lpbuildd.tests.archivebuilder import (
    docker25_classic,
    make_image,
    make_layer,
)


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
    builder.startBuild(build_cookie)
    result = OCIBuildManager(
        builder,
        ReplayBackend(archive),
        "example.com/app:latest",
        build_dir,
        upload_format="oci",
    ).gatherResults()
    builder.buildComplete("OK")
    return result


def make_oci_upload_dir(images, work_dir, archive=None, sources=None):
    """An upload directory as the build farm collects it (flat names).

    What a builder files when asked for an OCI upload: `lpbuildd.oci`'s
    `write_oci_upload` over `read_docker_save`.

    :param archive: The path of an archive to gather instead of a Docker
        25+ save of ``images``.
    :param sources: {layer digest or diff_id: repository it was pulled
        from}, as the builder finds them.
    """
    if archive is None:
        archive = write_archive(work_dir, images, name="upload.tar")
    save_dir = tempfile.mkdtemp(dir=work_dir, prefix="save-")
    with open(archive, "rb") as f:
        save = read_docker_save(f, save_dir, keep_compressed=True, jobs=1)
    upload = os.path.join(work_dir, "upload")
    os.mkdir(upload)
    write_oci_upload(save, upload, sources)
    # The builder's files are linked from its work directory; the build
    # farm's downloads are files of their own.
    shutil.rmtree(save_dir)
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


def legacy_upload_files(image, pulled=(), more_images=()):
    """The files of a legacy upload of ``image``: {name: bytes}.

    :param pulled: positions of layers that docker pulled: digests.json
        gives them a ``sha256:``-prefixed registry digest that is not
        the digest of the ``.tar.gz`` file; the others get the bare hex
        digest of their file, as launchpad-buildd wrote them.
    :param more_images: further images of the same upload (manifest.json
        and digests.json then have one entry per image).
    """
    files = {}
    manifest = []
    digests = []
    for image in (image, *more_images):
        config_name = hashlib.sha256(image.config).hexdigest() + ".json"
        files[config_name] = image.config
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
        manifest.append(
            {"Config": config_name, "RepoTags": None, "Layers": layer_paths}
        )
        digests.append(layer_digests)
    files["manifest.json"] = json.dumps(manifest).encode()
    files["digests.json"] = json.dumps(digests).encode()
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
        path = os.path.join(root, name)
        if name in ("incoming", "quarantine") or not os.path.isdir(path):
            continue
        found.update(os.listdir(path))
    return found


class OCIBuildFarmLayer(LaunchpadZopelessLayer):
    """PostgreSQL and a librarian; tests start their own builder."""

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


class SQLiteOCIBuildFarmLayer(SQLiteLaunchpadZopelessLayer):
    """SQLite and a librarian; tests start their own builder."""

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


class BuildFarmTestMixin(BuilderWorkerTestMixin):
    """A real builder for each test, and behaviours whose worker uses it.

    For tests on `OCIBuildFarmLayer` or `SQLiteOCIBuildFarmLayer`; tests
    run with `AsynchronousDeferredRunTest`.
    """

    def setUpBuildFarm(self):
        self.work_dir = self.useFixture(TempDir()).path
        self.builder_server = self.useLoopbackBuilder()
        self.builder = self.builder_server.builder
        self.upload_root = os.path.join(self.work_dir, "uploads")

    def makeBehaviour(self, build, url=None, **kwargs):
        """A behaviour for ``build``, queued and building on our builder."""
        url = url or self.builder_server.url
        builder = self.factory.makeBuilder(url=url)
        self.factory.makeBuildQueue(build, builder=builder)
        worker = self.makeWorker(
            url,
            retry_policy=RetryPolicy(attempts=3, initial_delay=0),
            timeout=10,
        )
        behaviour = OCIRecipeBuildBehaviour(
            build, upload_root=self.upload_root, **kwargs
        )
        behaviour.setBuilder(builder, worker)
        return behaviour

    def uploadPath(self, build):
        """Where the build's files were collected, or None."""
        incoming = os.path.join(self.upload_root, "incoming")
        if not os.path.isdir(incoming):
            return None
        suffix = "-" + build.build_cookie
        leaves = [n for n in os.listdir(incoming) if n.endswith(suffix)]
        if not leaves:
            return None
        (leaf,) = leaves
        return upload_files_dir(build, os.path.join(incoming, leaf))

    @defer.inlineCallbacks
    def collect(self, behaviour, status=None):
        """Hand the builder's status to the behaviour, as the manager does.

        :return: A Deferred firing with the directory holding the
            collected files, or None if the build did not get there.
        """
        if status is None:
            status = yield behaviour._worker.status()
        build = behaviour.build
        yield behaviour.handleStatus(build.buildqueue_record, status)
        if status["builder_status"] == WorkerBuilderStatus.WAITING:
            yield behaviour._worker.clean()
        if build.status != BuildStatus.UPLOADING:
            return None
        return self.uploadPath(build)

    def assertNothingCollected(self):
        for state in ("grabbing", "incoming"):
            directory = os.path.join(self.upload_root, state)
            if os.path.isdir(directory):
                self.assertEqual([], os.listdir(directory))
