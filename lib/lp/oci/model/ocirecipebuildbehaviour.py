# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""How the build farm manager collects the results of OCI recipe builds.

`OCIRecipeBuildBehaviour._downloadFiles(worker_status, upload_path,
logger)` is asynchronous, as in Launchpad.  A builder hands over one of
two forms (see `lp.oci.model.ociupload`):

The OCI upload (``index.json`` + ``oci-layout`` in the filemap):
    ``oci-layout`` and ``index.json`` are fetched, then each image index
    and manifest the index leads to, then each config, one at a time and
    each checked against the digest and size that refer to it.  The
    layer descriptors come from the manifests.  A layer whose content
    the librarian already holds (`IOCIFileSet.getReusableLayerFile`, by
    digest and size) is not fetched at all; the others are fetched with
    bounded concurrency and checked against the sha256 and size the
    download process computed while writing them, so no layer is read
    again here.

The legacy upload (``digests.json`` in the filemap):
    As Launchpad does: ``manifest.json``, ``digests.json`` and every
    config are fetched, and ``<layer_id>.tar.gz`` only for layers whose
    digest the librarian does not already hold.

Anything else fails the build with a reason.  `transfers` records, per
layer digest, whether it was ``"fetched"`` or ``"reused"`` and its size.

Differences from Launchpad: Launchpad knows only the legacy upload, reuses
layers by digest alone (`getByLayerDigest`) and checks nothing it fetches.
"""

__all__ = [
    "OCIRecipeBuildBehaviour",
]

import os

from twisted.internet import defer
from twisted.internet.threads import deferToThread
from zope.component import adapter, getUtility
from zope.interface import implementer

from lp.buildmaster.interfaces.buildfarmjobbehaviour import (
    IBuildFarmJobBehaviour,
)
from lp.buildmaster.model.buildfarmjobbehaviour import (
    BuildFarmJobBehaviourBase,
    check_builder_file_name,
)
from lp.oci.interfaces.ocirecipebuild import IOCIFileSet, IOCIRecipeBuild
from lp.oci.model.ociupload import (
    OCIUploadError,
    blob_file_name,
    check_oci_layout,
    parse_legacy_upload,
    read_json_file,
    verify_blob_file,
    walk_oci_upload,
)
from ocitypes.faultpoint import checkpoint

FETCHED = "fetched"
REUSED = "reused"


class _NotFetched(Exception):
    """`walk_oci_upload` asked for a document not fetched yet."""

    def __init__(self, descriptor):
        super().__init__(str(descriptor.digest))
        self.descriptor = descriptor


@adapter(IOCIRecipeBuild)
@implementer(IBuildFarmJobBehaviour)
class OCIRecipeBuildBehaviour(BuildFarmJobBehaviourBase):
    """See `IBuildFarmJobBehaviour`.

    :param max_concurrency: How many layers to fetch at once (the
        worker's default when None).

    After `handleSuccess`: `upload_format` is ``"oci"`` or ``"legacy"``;
    `images` the `OCIUploadImage`s or `LegacyImage`s found;
    `transfers` maps each layer `Digest` to ``(FETCHED or REUSED,
    size)``; `bytes_fetched` and `bytes_reused` sum the layer sizes
    (documents, always fetched, are not counted); `downloads` maps each
    fetched file name to its `DownloadResult`.
    """

    download_errors = BuildFarmJobBehaviourBase.download_errors + (
        OCIUploadError,
    )

    def __init__(self, build, upload_root=None, max_concurrency=None):
        super().__init__(build, upload_root=upload_root)
        self.max_concurrency = max_concurrency
        self._resetTransfers()

    def _resetTransfers(self):
        self.upload_format = None
        self.images = []
        self.transfers = {}
        self.downloads = {}

    @property
    def bytes_fetched(self):
        return sum(s for how, s in self.transfers.values() if how == FETCHED)

    @property
    def bytes_reused(self):
        return sum(s for how, s in self.transfers.values() if how == REUSED)

    def extraBuildArgs(self, logger=None):
        """See `IBuildFarmJobBehaviour`."""
        args = super().extraBuildArgs(logger=logger)
        recipe = self.build.recipe
        args["name"] = recipe.image_name or recipe.name
        args["build_file"] = "Dockerfile"
        return args

    def verifySuccessfulBuild(self):
        """See `IBuildFarmJobBehaviour`."""
        super().verifySuccessfulBuild()
        if self.build.recipe is None:
            raise AssertionError(f"{self.build_cookie} has no recipe")

    @defer.inlineCallbacks
    def _downloadFiles(self, worker_status, upload_path, logger):
        """See `BuildFarmJobBehaviourBase`."""
        self._resetTransfers()
        filemap = worker_status["filemap"]
        if "index.json" in filemap and "oci-layout" in filemap:
            self.upload_format = "oci"
            yield self._downloadOCIUpload(filemap, upload_path, logger)
        elif "digests.json" in filemap:
            self.upload_format = "legacy"
            yield self._downloadLegacyUpload(filemap, upload_path, logger)
        else:
            raise OCIUploadError(
                "The build returned neither an OCI upload (index.json and "
                "oci-layout) nor digests.json"
            )

    def _pathFor(self, name, filemap, upload_path):
        """The SHA-1 and local path of a file the build must have returned."""
        sha1 = filemap.get(name)
        if sha1 is None:
            raise OCIUploadError(f"The build did not return {name}")
        return sha1, check_builder_file_name(name, upload_path)

    @defer.inlineCallbacks
    def _fetchFile(self, name, filemap, upload_path, logger):
        """Fetch one file (once); return its path."""
        sha1, path = self._pathFor(name, filemap, upload_path)
        if name not in self.downloads:
            logger.info(
                "Grabbing file: %s (%s)", name, self._worker.getURL(sha1)
            )
            self.downloads[name] = yield self._worker.getFile(
                sha1, path, logger=logger
            )
            checkpoint("fetch.file")
        return path

    @defer.inlineCallbacks
    def _fetchFiles(self, names, filemap, upload_path, logger):
        """Fetch several files with bounded concurrency."""
        names = [name for name in names if name not in self.downloads]
        if not names:
            return
        files = [self._pathFor(name, filemap, upload_path) for name in names]
        results = yield self._worker.getFiles(
            files, logger=logger, max_concurrency=self.max_concurrency
        )
        self.downloads.update(zip(names, results))
        checkpoint("fetch.files")

    @defer.inlineCallbacks
    def _verifyBlob(self, name, descriptor):
        """Check a fetched blob against its descriptor.

        sha256 blobs are checked against what the download process
        computed; other algorithms are hashed again, in a thread.
        """
        result = self.downloads[name]
        digest = descriptor.digest
        if result.size != descriptor.size:
            raise OCIUploadError(
                f"{name} is {result.size} bytes, its descriptor says "
                f"{descriptor.size}"
            )
        if digest.algorithm == "sha256":
            if result.sha256 != digest.hex:
                raise OCIUploadError(
                    f"{name} has digest sha256:{result.sha256}"
                )
        else:
            yield deferToThread(
                verify_blob_file, result.path, digest, descriptor.size
            )

    # The OCI upload.

    @defer.inlineCallbacks
    def _downloadOCIUpload(self, filemap, upload_path, logger):
        layout = yield self._fetchFile(
            "oci-layout", filemap, upload_path, logger
        )
        check_oci_layout(read_json_file(layout))
        index_path = yield self._fetchFile(
            "index.json", filemap, upload_path, logger
        )
        index = read_json_file(index_path)

        def load_json(descriptor):
            name = blob_file_name(descriptor.digest)
            if name not in self.downloads:
                raise _NotFetched(descriptor)
            return read_json_file(
                self.downloads[name].path, str(descriptor.digest)
            )

        # walk_oci_upload reads documents synchronously: walk until it
        # asks for one not fetched yet, fetch and check it, walk again.
        # Documents are few and small.
        while True:
            try:
                _, images = walk_oci_upload(index, load_json)
            except _NotFetched as e:
                name = blob_file_name(e.descriptor.digest)
                yield self._fetchFile(name, filemap, upload_path, logger)
                yield self._verifyBlob(name, e.descriptor)
            else:
                break

        to_fetch = {}
        for image in images:
            for layer in image.layers:
                digest = layer.digest
                if layer.is_foreign or digest in self.transfers:
                    continue
                size = layer.descriptor.size
                reusable = getUtility(IOCIFileSet).getReusableLayerFile(
                    digest, size=size
                )
                if reusable is not None:
                    logger.info("Layer %s is in the librarian", digest)
                    self.transfers[digest] = (REUSED, size)
                    continue
                name = blob_file_name(digest)
                self._pathFor(name, filemap, upload_path)
                to_fetch[name] = layer.descriptor
                self.transfers[digest] = (FETCHED, size)
        yield self._fetchFiles(list(to_fetch), filemap, upload_path, logger)
        for name, descriptor in to_fetch.items():
            yield self._verifyBlob(name, descriptor)
        self.images = images

    # The legacy upload.

    @defer.inlineCallbacks
    def _downloadLegacyUpload(self, filemap, upload_path, logger):
        manifest_path = yield self._fetchFile(
            "manifest.json", filemap, upload_path, logger
        )
        digests_path = yield self._fetchFile(
            "digests.json", filemap, upload_path, logger
        )
        images = parse_legacy_upload(
            read_json_file(manifest_path), read_json_file(digests_path)
        )
        for image in images:
            yield self._fetchFile(
                image.config_name, filemap, upload_path, logger
            )
        to_fetch = {}
        for image in images:
            for layer in image.layers:
                if layer.digest in self.transfers:
                    continue
                reusable = getUtility(IOCIFileSet).getReusableLayerFile(
                    layer.digest
                )
                if reusable is not None:
                    logger.info("Layer %s is in the librarian", layer.digest)
                    self.transfers[layer.digest] = (
                        REUSED,
                        reusable.content.filesize,
                    )
                    continue
                name = layer.file_name
                self._pathFor(name, filemap, upload_path)
                to_fetch.setdefault(name, []).append(layer.digest)
        # Two digests.json entries may name the same layer file.
        yield self._fetchFiles(list(to_fetch), filemap, upload_path, logger)
        for name, digests in to_fetch.items():
            for digest in digests:
                self.transfers[digest] = (FETCHED, self.downloads[name].size)
        self.images = images
