# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Processing the files an OCI recipe build uploaded.

`OCIRecipeUpload.process` records an upload collected by
`OCIRecipeBuildBehaviour` as `OCIFile` rows of the build:

The OCI upload (``index.json`` at the top):
    ``index.json`` and ``oci-layout``, every image index, manifest and
    config the index leads to, and every layer of every manifest, each
    with its digest, media type, size and kind (layers also with the
    diff_id their config lists).  A layer that is not in the upload
    directory was not fetched because the librarian holds its content:
    its row points at an existing librarian file.

The legacy upload (the directory holding ``digests.json``):
    ``manifest.json``, ``digests.json``, each config and each layer,
    whose digest is normalised to ``sha256:<hex>``; a layer without its
    ``<layer_id>.tar.gz`` reuses the librarian file of the `OCIFile`
    with its digest, as in Launchpad.

Files go into the librarian by hard link when the upload directory is
on the same file system (`ILibraryFileAliasSet.createFromPath`): each is
read once to be hashed and verified, and never copied.

Everything happens in one transaction.  On any error it is aborted,
content this upload put in the librarian that no row refers to is
removed from storage, the build is marked FAILEDTOUPLOAD with the reason
and `UploadError` is raised.  On success the build is FULLYBUILT and
`IOCIRecipeBuild.verifySuccessfulUpload` holds.
"""

__all__ = [
    "OCIRecipeUpload",
]

import logging
import os

import transaction
from zope.component import getUtility

from lp.archiveuploader.utils import UploadError
from lp.buildmaster.enums import BuildStatus
from lp.oci.enums import OCIFileKind
from lp.oci.interfaces.ocirecipebuild import IOCIFileSet
from lp.oci.model.ociupload import (
    LEGACY_LAYER_MEDIA_TYPE,
    OCIUploadError,
    blob_file_name,
    check_oci_layout,
    parse_legacy_upload,
    read_json_file,
    verify_blob_file,
    walk_oci_upload,
)
from lp.services.database.interfaces import IStore
from lp.services.librarian.interfaces import ILibraryFileAliasSet, UploadFailed
from lp.services.librarian.model import LibraryFileContent
from lp.services.librarian.storage import get_librarian_storage
from ocitypes.descriptor import MediaType
from ocitypes.digest import Digest

JSON_TYPE = "application/json"
OCTET_STREAM = "application/octet-stream"


class OCIRecipeUpload:
    """An OCI recipe build's upload directory, ready to be processed."""

    def __init__(self, upload_path, logger=None):
        self.upload_path = upload_path
        self.logger = logger or logging.getLogger(__name__)
        self.librarian = getUtility(ILibraryFileAliasSet)
        self._stored = set()

    def process(self, build):
        """Record the upload's files as the build's `OCIFile`s.

        :raises UploadError: if the upload cannot be accepted; the build
            is then FAILEDTOUPLOAD and nothing of the upload remains.
        """
        self._stored = set()
        try:
            if os.path.isfile(os.path.join(self.upload_path, "index.json")):
                self._processOCIUpload(build)
            else:
                directory = self._findLegacyDirectory()
                if directory is None:
                    raise UploadError(
                        "Build did not produce index.json or digests.json"
                    )
                self._processLegacyUpload(build, directory)
            problems = build.getUploadProblems()
            if problems:
                raise UploadError("; ".join(problems))
            build.updateStatus(BuildStatus.FULLYBUILT)
            transaction.commit()
        except Exception as e:
            transaction.abort()
            self._removeOrphans()
            if isinstance(e, (UploadError, OCIUploadError, UploadFailed)):
                reason = str(e)
            else:
                self.logger.exception("Processing %s failed", build)
                reason = f"{type(e).__name__}: {e}"
            self.logger.warning("Upload of %s failed: %s", build, reason)
            build.failure_reason = reason
            build.updateStatus(BuildStatus.FAILEDTOUPLOAD)
            transaction.commit()
            if isinstance(e, UploadError):
                raise
            raise UploadError(reason) from e
        self.logger.info("%s is fully built", build)

    def _removeOrphans(self):
        """Remove stored content that no committed row refers to.

        The librarian is content-addressed: content already referred to
        (by another build, or stored again meanwhile) must stay.
        """
        storage = get_librarian_storage()
        store = IStore(LibraryFileContent)
        for sha256 in sorted(self._stored):
            referenced = not store.find(
                LibraryFileContent, LibraryFileContent.sha256 == sha256
            ).is_empty()
            if not referenced:
                self.logger.info("Removing unreferenced content %s", sha256)
                storage.remove(sha256)
        transaction.abort()
        self._stored = set()

    def _store(self, path, name, content_type, digest=None, size=None):
        """Put a file in the librarian; return its `ILibraryFileAlias`."""
        expected = None
        if digest is not None and digest.algorithm == "sha256":
            expected = digest.hex
            self._stored.add(expected)
        elif digest is not None:
            verify_blob_file(path, digest, size)
        if size is None:
            size = os.path.getsize(path)
        # Linked, not copied: the upload is ours and not written again.
        lfa = self.librarian.createFromPath(
            name,
            size,
            path,
            content_type,
            allow_zero_length=True,
            expected_sha256=expected,
        )
        self._stored.add(lfa.content.sha256)
        return lfa

    # The OCI upload.

    def _blobPath(self, digest):
        return os.path.join(self.upload_path, blob_file_name(digest))

    def _findExistingLayer(self, descriptor):
        """A librarian file holding this layer's content, or None."""
        digest = descriptor.digest
        if digest.algorithm != "sha256":
            return None
        content = self.librarian.getContentBySHA256(digest.hex)
        if content is None or content.filesize != descriptor.size:
            return None
        oci_file = getUtility(IOCIFileSet).getByLayerDigest(digest)
        if oci_file is not None and oci_file.library_file.content == content:
            return oci_file.library_file
        return self.librarian.findBySHA256(digest.hex).first()

    def _processOCIUpload(self, build):
        check_oci_layout(
            read_json_file(os.path.join(self.upload_path, "oci-layout"))
        )
        index = read_json_file(os.path.join(self.upload_path, "index.json"))

        def load_json(descriptor):
            path = self._blobPath(descriptor.digest)
            verify_blob_file(path, descriptor.digest, descriptor.size)
            return read_json_file(path, str(descriptor.digest))

        documents, images = walk_oci_upload(index, load_json)
        build.addFile(
            self._store(
                os.path.join(self.upload_path, "index.json"),
                "index.json",
                JSON_TYPE,
            ),
            media_type=MediaType.OCI_INDEX,
            kind=OCIFileKind.INDEX,
        )
        build.addFile(
            self._store(
                os.path.join(self.upload_path, "oci-layout"),
                "oci-layout",
                JSON_TYPE,
            ),
            kind=OCIFileKind.OTHER,
        )
        seen = set()
        for document in documents:
            descriptor = document.descriptor
            seen.add(descriptor.digest)
            lfa = self._store(
                self._blobPath(descriptor.digest),
                descriptor.digest.hex,
                descriptor.media_type or JSON_TYPE,
                digest=descriptor.digest,
                size=descriptor.size,
            )
            build.addFile(
                lfa,
                layer_file_digest=descriptor.digest,
                media_type=descriptor.media_type,
                size=descriptor.size,
                kind=document.kind,
            )
        for image in images:
            for layer in image.layers:
                if layer.is_foreign or layer.digest in seen:
                    continue
                seen.add(layer.digest)
                self._addOCILayer(build, layer)

    def _addOCILayer(self, build, layer):
        descriptor = layer.descriptor
        path = self._blobPath(descriptor.digest)
        if os.path.exists(path):
            lfa = self._store(
                path,
                descriptor.digest.hex,
                descriptor.media_type or OCTET_STREAM,
                digest=descriptor.digest,
                size=descriptor.size,
            )
        else:
            lfa = self._findExistingLayer(descriptor)
            if lfa is None:
                raise UploadError(
                    f"Layer {descriptor.digest} is neither in the upload "
                    "nor in the librarian"
                )
            self.logger.debug("Reusing %s for %s", lfa, descriptor.digest)
        build.addFile(
            lfa,
            layer_file_digest=descriptor.digest,
            diff_id=layer.diff_id,
            media_type=descriptor.media_type,
            size=descriptor.size,
            kind=OCIFileKind.LAYER,
        )

    # The legacy upload.

    def _findLegacyDirectory(self):
        """The directory under the upload holding digests.json, or None."""
        for dirpath, dirnames, filenames in os.walk(self.upload_path):
            dirnames.sort()
            if "digests.json" in filenames:
                return dirpath
        return None

    def _processLegacyUpload(self, build, directory):
        manifest_path = os.path.join(directory, "manifest.json")
        digests_path = os.path.join(directory, "digests.json")
        images = parse_legacy_upload(
            read_json_file(manifest_path), read_json_file(digests_path)
        )
        build.addFile(
            self._store(manifest_path, "manifest.json", JSON_TYPE),
            kind=OCIFileKind.LEGACY_MANIFEST,
        )
        build.addFile(
            self._store(digests_path, "digests.json", JSON_TYPE),
            kind=OCIFileKind.LEGACY_DIGESTS,
        )
        configs = set()
        layers = set()
        for image in images:
            if image.config_name not in configs:
                configs.add(image.config_name)
                path = os.path.join(directory, image.config_name)
                if not os.path.isfile(path):
                    raise UploadError(f"Config {image.config_name} is missing")
                lfa = self._store(path, image.config_name, JSON_TYPE)
                build.addFile(
                    lfa,
                    layer_file_digest=Digest("sha256", lfa.content.sha256),
                    media_type=MediaType.DOCKER_CONFIG,
                    kind=OCIFileKind.CONFIG,
                )
            for layer in image.layers:
                if layer.digest in layers:
                    continue
                layers.add(layer.digest)
                self._addLegacyLayer(build, directory, layer)

    def _addLegacyLayer(self, build, directory, layer):
        path = os.path.join(directory, layer.file_name)
        if os.path.isfile(path):
            lfa = self._store(path, layer.file_name, "application/gzip")
        else:
            existing = getUtility(IOCIFileSet).getByLayerDigest(layer.digest)
            content = existing and existing.library_file.content
            if content is None or (
                self.librarian.getContentBySHA256(content.sha256) is None
            ):
                raise UploadError(
                    f"Missing layer file {layer.file_name} ({layer.digest})"
                )
            lfa = existing.library_file
        build.addFile(
            lfa,
            layer_file_digest=layer.digest,
            diff_id=layer.diff_id,
            media_type=LEGACY_LAYER_MEDIA_TYPE,
            size=lfa.content.filesize,
            kind=OCIFileKind.LAYER,
        )
