# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""How the build farm manager collects the results of OCI recipe builds.

`OCIRecipeBuildBehaviour` has the shape of Launchpad's with the
project's patch series (``upstream/launchpad``): `extraBuildArgs` asks
for an OCI upload (``"upload_format": "oci"``), and
`_downloadFiles(worker_status, upload_path, logger)` dispatches on what
the builder filed, as the patched upstream one does:

The OCI upload (``index.json`` and ``oci-layout`` in the filemap):
    `_downloadOCIFiles` fetches ``oci-layout`` and ``index.json``, then
    each image manifest and config (`_fetchOCIBlob`), each checked
    against the digest and size that refer to it, all read with
    `lp.oci.model.ocilayout`.  The layer descriptors come from the
    manifests.  A layer whose content the librarian already holds
    (`IOCIFileSet.getReusableLayerFile(digest, size)`) is not fetched,
    and the file holding it is marked as used; nothing is copied out of
    the librarian.  A document that does not match its descriptor, or a
    blob the build did not return, is a `BuildDaemonError`.

The legacy upload (anything else):
    ``manifest.json``, ``digests.json`` and every config are fetched
    (`_fetchIntermediaryFile`), and ``<layer_id>.tar.gz`` only for the
    layers `_extractLayerFiles` finds missing from the librarian.

Harness only, around that shape:

- `check_file` becomes a comparison with the sha256 and size the
  download process computed while writing the file (`_checkDownload`),
  so that nothing is read again here; fetched layers are checked the
  same way (upstream leaves that to the upload processor, which checks
  them again here too);
- layers are fetched with bounded concurrency (``max_concurrency``);
- after `handleSuccess`: `upload_format` (``"oci"`` or ``"legacy"``),
  `images` (the `OCIImageManifest`s or `LegacyImage`s found),
  `transfers` (each layer `Digest` to ``("fetched" or "reused",
  size)``), `bytes_fetched`, `bytes_reused` (layers only) and
  `downloads` (each fetched file name to its `DownloadResult`);
- fault checkpoints ``fetch.file`` (documents) and ``fetch.files``
  (layers);
- legacy layers are reused by their content's digest (a layer the
  builder built, whose digests.json digest is that of its file), not by
  the digest recorded alone (`getByLayerDigest`, upstream's rule, which
  would let a pulled layer's registry digest stand for a file nothing
  vouches for); their size is not known beforehand.
"""

__all__ = [
    "OCIRecipeBuildBehaviour",
]

import os
from datetime import datetime, timezone

from twisted.internet import defer
from zope.component import adapter, getUtility
from zope.interface import implementer

from lp.buildmaster.interfaces.builder import BuildDaemonError
from lp.buildmaster.interfaces.buildfarmjobbehaviour import (
    IBuildFarmJobBehaviour,
)
from lp.buildmaster.model.buildfarmjobbehaviour import (
    BuildFarmJobBehaviourBase,
    check_builder_file_name,
)
from lp.oci.interfaces.ocirecipebuild import IOCIFileSet, IOCIRecipeBuild
from lp.oci.model.ocilayout import (
    MAX_DOCUMENT_SIZE,
    OCILayoutError,
    parse_index,
    parse_manifest,
    parse_oci_layout,
)
from lp.oci.model.ociupload import (
    OCIUploadError,
    check_image_count,
    parse_legacy_upload,
    read_json_file,
)
from ocitypes.digest import Digest
from ocitypes.faultpoint import checkpoint

FETCHED = "fetched"
REUSED = "reused"


@adapter(IOCIRecipeBuild)
@implementer(IBuildFarmJobBehaviour)
class OCIRecipeBuildBehaviour(BuildFarmJobBehaviourBase):
    """See `IBuildFarmJobBehaviour`.

    :param max_concurrency: How many layers to fetch at once (the
        worker's default when None).
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
        # Builders that understand this file the image as an OCI image
        # layout, which _downloadFiles handles as well as the legacy form.
        args["upload_format"] = "oci"
        return args

    def verifySuccessfulBuild(self):
        """See `IBuildFarmJobBehaviour`."""
        super().verifySuccessfulBuild()
        if self.build.recipe is None:
            raise AssertionError(f"{self.build_cookie} has no recipe")

    def _ensureFilePath(self, file_name, file_path, upload_path):
        # If the evaluated output file name is not within our upload
        # path, then we don't try to copy this or any subsequent files.
        # Harness only: `check_builder_file_name`'s stricter rule (a
        # plain file name, directly in the upload path).
        check_builder_file_name(file_name, upload_path)

    def _convertToRetrievableFile(self, upload_path, file_name, filemap):
        # Harness only: a name the build did not return fails the build
        # with a reason rather than a KeyError.
        if file_name not in filemap:
            raise BuildDaemonError("Build did not return %s." % file_name)
        file_path = os.path.join(upload_path, file_name)
        self._ensureFilePath(file_name, file_path, upload_path)
        return (filemap[file_name], file_path)

    @defer.inlineCallbacks
    def _getFile(self, upload_path, name, filemap, logger):
        """Fetch one file, once (harness only: `downloads`, checkpoint)."""
        sha1, path = self._convertToRetrievableFile(upload_path, name, filemap)
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
    def _getFiles(
        self, upload_path, names, filemap, logger, fault="fetch.files"
    ):
        """Fetch several files with bounded concurrency (harness only).

        :param fault: The fault checkpoint passed once they are fetched:
            ``fetch.files`` for layers, ``fetch.file`` for documents.
        """
        names = [name for name in names if name not in self.downloads]
        files = [
            self._convertToRetrievableFile(upload_path, name, filemap)
            for name in names
        ]
        if not files:
            return
        for name, (sha1, _) in zip(names, files):
            logger.info(
                "Grabbing file: %s (%s)", name, self._worker.getURL(sha1)
            )
        results = yield self._worker.getFiles(
            files, logger=logger, max_concurrency=self.max_concurrency
        )
        self.downloads.update(zip(names, results))
        checkpoint(fault)

    def _checkDownload(self, name, descriptor):
        """`check_file`, by what the download process computed.

        Harness only: the download process hashed the file as it wrote
        it, so it is not read again.
        """
        result = self.downloads[name]
        if (result.sha256, result.size) != (descriptor.hex, descriptor.size):
            raise OCILayoutError(
                "%s does not match its descriptor" % descriptor.file_name
            )

    # The OCI upload.

    @defer.inlineCallbacks
    def _fetchOCIBlob(self, descriptor, filemap, upload_path, logger):
        """Fetch a manifest or config of an OCI upload, and check it."""
        name = descriptor.file_name
        if name not in filemap:
            raise BuildDaemonError("Build did not return %s." % name)
        file_path = yield self._getFile(upload_path, name, filemap, logger)
        self._checkDownload(name, descriptor)
        return file_path

    @defer.inlineCallbacks
    def _downloadOCIFiles(self, filemap, upload_path, logger):
        """Download an OCI upload, except the layers the librarian has."""
        yield self._getFiles(
            upload_path,
            ["oci-layout", "index.json"],
            filemap,
            logger,
            fault="fetch.file",
        )
        with open(os.path.join(upload_path, "oci-layout"), "rb") as f:
            parse_oci_layout(f.read(1024))
        with open(os.path.join(upload_path, "index.json"), "rb") as f:
            descriptors = parse_index(f.read(MAX_DOCUMENT_SIZE + 1))
        # Harness only: nothing fetched for an upload beyond the bound.
        check_image_count(len(descriptors), "index.json")

        files = {}
        for descriptor in descriptors:
            if descriptor.size > MAX_DOCUMENT_SIZE:
                raise OCILayoutError("%s is too large" % descriptor.file_name)
            manifest_path = yield self._fetchOCIBlob(
                descriptor, filemap, upload_path, logger
            )
            with open(manifest_path, "rb") as f:
                manifest = parse_manifest(f.read(), descriptor)
            yield self._fetchOCIBlob(
                manifest.config, filemap, upload_path, logger
            )
            self.images.append(manifest)
            for layer in manifest.layers:
                # Harness only: each layer is accounted for once.
                digest = Digest.parse(layer.digest)
                if digest in self.transfers:
                    continue
                # The upload processor links layers that the librarian
                # already has to this build.
                oci_file = getUtility(IOCIFileSet).getReusableLayerFile(
                    layer.digest, layer.size
                )
                if oci_file is not None:
                    oci_file.date_last_used = datetime.now(timezone.utc)
                    logger.info("Reusing %s from the librarian" % layer.digest)
                    self.transfers[digest] = (REUSED, layer.size)
                else:
                    files[layer.file_name] = layer
                    self.transfers[digest] = (FETCHED, layer.size)

        yield self._getFiles(upload_path, sorted(files), filemap, logger)
        for name, layer in sorted(files.items()):
            self._checkDownload(name, layer)

    # The legacy upload.

    @defer.inlineCallbacks
    def _fetchIntermediaryFile(self, name, filemap, upload_path, logger):
        file_path = yield self._getFile(upload_path, name, filemap, logger)
        # Harness only: bounded in size and depth.
        return read_json_file(file_path, name)

    def _extractLayerFiles(self, upload_path, image, files):
        """Find the layers of a legacy image that must be fetched.

        Harness only: ``image`` is a `LegacyImage` (`parse_legacy_upload`
        pairs manifest.json with digests.json); a layer is reused by its
        content's digest, and nothing is copied out of the librarian.
        """
        for layer in image.layers:
            if layer.digest in self.transfers:
                continue
            # Check if the file already exists in the librarian.
            oci_file = getUtility(IOCIFileSet).getReusableLayerFile(
                layer.digest
            )
            if oci_file is not None:
                oci_file.date_last_used = datetime.now(timezone.utc)
                self.transfers[layer.digest] = (
                    REUSED,
                    oci_file.library_file.content.filesize,
                )
            # If it doesn't, we need to download it.
            else:
                files.setdefault(layer.file_name, []).append(layer.digest)

    @defer.inlineCallbacks
    def _downloadFiles(self, worker_status, upload_path, logger):
        """Download required artifact files."""
        self._resetTransfers()
        filemap = worker_status["filemap"]

        # Builders file an OCI upload when asked to (see extraBuildArgs);
        # those that cannot file the legacy form.
        if "index.json" in filemap and "oci-layout" in filemap:
            self.upload_format = "oci"
            try:
                yield self._downloadOCIFiles(filemap, upload_path, logger)
            except OCILayoutError as e:
                raise BuildDaemonError("Build returned a bad image: %s" % e)
            return

        # We don't want to download all of the files that have been
        # created, just the ones that are mentioned in the manifest and
        # config.
        self.upload_format = "legacy"
        manifest = yield self._fetchIntermediaryFile(
            "manifest.json", filemap, upload_path, logger
        )
        digests = yield self._fetchIntermediaryFile(
            "digests.json", filemap, upload_path, logger
        )

        files = {}
        self.images = parse_legacy_upload(manifest, digests)
        for image in self.images:
            yield self._fetchIntermediaryFile(
                image.config_name, filemap, upload_path, logger
            )
            self._extractLayerFiles(upload_path, image, files)

        yield self._getFiles(upload_path, list(files), filemap, logger)
        # Two digests.json entries may name the same layer file.
        for name, digests in files.items():
            for digest in digests:
                self.transfers[digest] = (FETCHED, self.downloads[name].size)
