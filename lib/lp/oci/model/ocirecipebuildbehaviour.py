# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""How the build farm master collects the results of OCI recipe builds.

A builder hands over one of two forms (see `lp.oci.model.ociupload`):

The OCI upload (``index.json`` + ``oci-layout`` in the filemap):
    ``oci-layout`` and ``index.json`` are fetched, then each image index
    and manifest the index leads to, then each config, one at a time and
    each checked against the digest and size that refer to it.  The
    layer descriptors come from the manifests.  A layer whose content
    (by sha256 and size) the librarian already holds is not fetched at
    all; the others are fetched with bounded concurrency and checked.

The legacy upload (``digests.json`` in the filemap):
    As Launchpad does: ``manifest.json``, ``digests.json`` and every
    config are fetched, and ``<layer_id>.tar.gz`` only for layers whose
    content (by digest, bare hex or ``sha256:``-prefixed alike) the
    librarian does not hold.

Anything else fails the build with a reason.  Whether a layer is in the
librarian is `IOCIFileSet.getReusableLayerFile`'s decision, which
upload processing takes too; it bumps the `OCIFile.date_last_used` of
reused layers.  `transfers` records, per layer digest,
whether it was ``"fetched"`` or ``"reused"`` and its size.
"""

__all__ = [
    "OCIRecipeBuildBehaviour",
]

import os

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

FETCHED = "fetched"
REUSED = "reused"


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
    (documents, always fetched, are not counted).
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

    def _downloadFiles(self, filemap, upload_path, logger):
        """See `BuildFarmJobBehaviourBase`."""
        self._resetTransfers()
        if "index.json" in filemap and "oci-layout" in filemap:
            self.upload_format = "oci"
            self._downloadOCIUpload(filemap, upload_path, logger)
        elif "digests.json" in filemap:
            self.upload_format = "legacy"
            self._downloadLegacyUpload(filemap, upload_path, logger)
        else:
            raise OCIUploadError(
                "The build returned neither an OCI upload (index.json and "
                "oci-layout) nor digests.json"
            )

    def _fetchFile(self, name, filemap, upload_path, logger):
        """Fetch one file (once) and return its path."""
        sha1 = filemap.get(name)
        if sha1 is None:
            raise OCIUploadError(f"The build did not return {name}")
        path = check_builder_file_name(name, upload_path)
        if not os.path.exists(path):
            self._worker.getFile(sha1, path, logger=logger)
        return path

    def _fetchLayers(self, to_fetch, logger):
        """Fetch ``[(sha1, path)]`` with bounded concurrency."""
        if to_fetch:
            self._worker.getFiles(
                to_fetch, logger=logger, max_concurrency=self.max_concurrency
            )

    # The OCI upload.

    def _findReusableContent(self, descriptor):
        """Whether the librarian already holds this layer's content."""
        return (
            getUtility(IOCIFileSet).getReusableLayerFile(
                descriptor.digest, descriptor.size
            )
            is not None
        )

    def _downloadOCIUpload(self, filemap, upload_path, logger):
        layout = self._fetchFile("oci-layout", filemap, upload_path, logger)
        check_oci_layout(read_json_file(layout))
        index_path = self._fetchFile(
            "index.json", filemap, upload_path, logger
        )
        index = read_json_file(index_path)

        def load_json(descriptor):
            path = self._fetchFile(
                blob_file_name(descriptor.digest), filemap, upload_path, logger
            )
            verify_blob_file(path, descriptor.digest, descriptor.size)
            return read_json_file(path, str(descriptor.digest))

        _, images = walk_oci_upload(index, load_json)
        to_fetch = {}
        for image in images:
            for layer in image.layers:
                digest = layer.digest
                if layer.is_foreign or digest in self.transfers:
                    continue
                size = layer.descriptor.size
                if self._findReusableContent(layer.descriptor):
                    logger.info("Layer %s is in the librarian", digest)
                    self.transfers[digest] = (REUSED, size)
                    continue
                name = blob_file_name(digest)
                if name not in filemap:
                    raise OCIUploadError(f"The build did not return {name}")
                path = check_builder_file_name(name, upload_path)
                to_fetch[digest] = (filemap[name], path, size)
                self.transfers[digest] = (FETCHED, size)
        self._fetchLayers(
            [
                (sha1, path)
                for sha1, path, _ in to_fetch.values()
                if not os.path.exists(path)
            ],
            logger,
        )
        for digest, (_, path, size) in to_fetch.items():
            verify_blob_file(path, digest, size)
        self.images = images

    # The legacy upload.

    def _findReusableLegacyLayer(self, digest):
        """The librarian file holding a legacy layer, or None."""
        return getUtility(IOCIFileSet).getReusableLayerFile(digest)

    def _downloadLegacyUpload(self, filemap, upload_path, logger):
        manifest = read_json_file(
            self._fetchFile("manifest.json", filemap, upload_path, logger)
        )
        digests = read_json_file(
            self._fetchFile("digests.json", filemap, upload_path, logger)
        )
        images = parse_legacy_upload(manifest, digests)
        for image in images:
            self._fetchFile(image.config_name, filemap, upload_path, logger)
        to_fetch = {}
        for image in images:
            for layer in image.layers:
                if layer.digest in self.transfers:
                    continue
                existing = self._findReusableLegacyLayer(layer.digest)
                if existing is not None:
                    logger.info("Layer %s is in the librarian", layer.digest)
                    self.transfers[layer.digest] = (
                        REUSED,
                        existing.content.filesize,
                    )
                    continue
                name = layer.file_name
                if name not in filemap:
                    raise OCIUploadError(f"The build did not return {name}")
                path = check_builder_file_name(name, upload_path)
                to_fetch[layer.digest] = (filemap[name], path)
        # Two digests.json entries may name the same layer file.
        self._fetchLayers(sorted(set(to_fetch.values())), logger)
        for digest, (_, path) in to_fetch.items():
            self.transfers[digest] = (FETCHED, os.path.getsize(path))
        self.images = images
