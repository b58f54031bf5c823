# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Processing the files an OCI recipe build uploaded.

`OCIRecipeUpload.process` records an upload collected by the build farm
as `OCIFile` rows of the build.  The files sit in
``<leaf>/<archive id>/<distribution name>/``, as in Launchpad:

The OCI upload (``index.json`` there):
    ``index.json`` and ``oci-layout``, every image index, manifest and
    config the index leads to, and every layer of every manifest, each
    with its digest, media type, size and kind (layers also with the
    diff_id their config lists).  A layer that is not in the upload was
    not fetched because the librarian holds its content: its row points
    at the librarian file `IOCIFileSet.getReusableLayerFile` finds.

The legacy upload (``digests.json`` there):
    ``manifest.json``, ``digests.json``, each config and each layer,
    whose digest is normalised to ``sha256:<hex>``; a layer without its
    ``<layer_id>.tar.gz`` reuses a librarian file the same way.

Files go into the librarian by hard link when the upload directory is
on the same file system (`ILibraryFileAliasSet.createFromPath`), never
copied.  A file the build farm's downloads verified (recorded beside the
upload, see `lp.buildmaster.verifiedfiles`) is not read at all: the
librarian takes its digests after one ``fstat``; any other file is read
once, to be hashed and verified.  A private
build's files are restricted; restricted or expiring files are never
reused for another build.

`process` runs in its caller's transaction (`UploadProcessor`'s): it
neither commits nor aborts, so dry runs work.  It raises `UploadError`
when the upload cannot be accepted; the caller then aborts and calls
`removeUnreferencedContent`.
"""

__all__ = [
    "OCIRecipeUpload",
]

import os

import transaction
from zope.component import getUtility

from lp.archiveuploader.utils import UploadError
from lp.buildmaster.enums import BuildStatus
from lp.buildmaster.verifiedfiles import read_verified_files
from lp.oci.enums import OCIFileKind
from lp.oci.interfaces.ocirecipebuild import IOCIFileSet
from lp.oci.model.ociupload import (
    LEGACY_LAYER_MEDIA_TYPE,
    blob_file_name,
    check_legacy_config,
    parse_legacy_upload,
    read_json_file,
    read_oci_upload_directory,
)
from lp.services.database.interfaces import IStore
from lp.services.librarian.interfaces import ILibraryFileAliasSet, UploadFailed
from lp.services.librarian.model import LibraryFileContent
from lp.services.librarian.storage import get_librarian_storage
from ocitypes.descriptor import MediaType
from ocitypes.digest import Digest
from ocitypes.faultpoint import checkpoint
from ocitypes.filenames import INDEX_FILE_NAME, LAYOUT_FILE_NAME

JSON_TYPE = "application/json"
OCTET_STREAM = "application/octet-stream"


class OCIRecipeUpload:
    """An OCI recipe build's upload directory, ready to be processed.

    :param upload_path: The upload's leaf directory.
    :param logger: A `logging.Logger`.
    """

    def __init__(self, upload_path, logger):
        self.upload_path = upload_path
        self.logger = logger
        self.librarian = getUtility(ILibraryFileAliasSet)
        self.restricted = False
        # The sha256 of every content this upload put in storage.
        self.stored_sha256s = set()
        # What the build farm's downloads verified, by file name.
        self.verified = read_verified_files(upload_path)

    def process(self, build):
        """Record the upload's files as the build's `OCIFile`s.

        The build is then FULLYBUILT.  Nothing is committed or aborted.

        :raises UploadError: if the upload cannot be accepted.
        """
        self.logger.debug("Beginning processing of %s.", self.upload_path)
        directory = os.path.join(
            self.upload_path, str(build.archive.id), build.distribution.name
        )
        self.restricted = build.is_private
        if os.path.isfile(os.path.join(directory, INDEX_FILE_NAME)):
            self._processOCIUpload(build, directory)
        elif os.path.isfile(os.path.join(directory, "digests.json")):
            self._processLegacyUpload(build, directory)
        else:
            raise UploadError(
                "Build did not produce index.json or digests.json"
            )
        checkpoint("upload.processed")
        build.updateStatus(BuildStatus.FULLYBUILT)
        self.logger.debug("Finished processing %s.", self.upload_path)

    def removeUnreferencedContent(self):
        """Remove content this upload stored that no row refers to.

        Call it once the transaction is aborted.  The librarian is
        content-addressed: content that a committed row refers to (for
        another build, or stored again meanwhile) stays.  Content with
        no committed row may still be in use by another upload that has
        stored it but not committed yet, so nothing is removed unless
        the librarian's exclusive in-use lock is free
        (`LibrarianStorage.exclusive`); otherwise the content is left
        for ``lp-oci verify --repair``.
        """
        storage = get_librarian_storage()
        sha256s, self.stored_sha256s = sorted(self.stored_sha256s), set()
        if not sha256s:
            return
        with storage.exclusive() as idle:
            if not idle:
                self.logger.info(
                    "Another upload is storing content: leaving %d "
                    "unreferenced files for lp-oci verify --repair",
                    len(sha256s),
                )
                return
            store = IStore(LibraryFileContent)
            for sha256 in sha256s:
                referenced = not store.find(
                    LibraryFileContent, LibraryFileContent.sha256 == sha256
                ).is_empty()
                if not referenced:
                    self.logger.debug(
                        "Removing unreferenced content %s", sha256
                    )
                    storage.remove(sha256)
            # Read under the lock, in a transaction of its own.
            transaction.abort()

    def _store(self, path, name, content_type, digest=None, size=None):
        """Put a file in the librarian; return its `ILibraryFileAlias`."""
        expected = None
        if digest is not None:
            if digest.algorithm != "sha256":
                raise UploadError(
                    f"{digest} is not a sha256 digest, which Launchpad "
                    "needs to store a blob"
                )
            expected = digest.hex
            self.stored_sha256s.add(expected)
        if size is None:
            size = os.path.getsize(path)
        try:
            # Linked, not copied: the upload is ours and not written again.
            lfa = self.librarian.createFromPath(
                name,
                size,
                path,
                content_type,
                restricted=self.restricted,
                allow_zero_length=True,
                expected_sha256=expected,
                verified=self.verified.get(os.path.basename(path)),
            )
        except FileNotFoundError:
            raise UploadError(f"{name} is missing") from None
        except UploadFailed as e:
            raise UploadError(f"Cannot store {name}: {e}") from None
        self.stored_sha256s.add(lfa.content.sha256)
        checkpoint("upload.file")
        return lfa

    def _reuse(self, digest, size, what):
        """The librarian file to reuse for a blob not in the upload."""
        lfa = getUtility(IOCIFileSet).getReusableLayerFile(digest, size)
        if lfa is None:
            raise UploadError(what)
        self.logger.debug("Reusing %s for %s", lfa, digest)
        return lfa

    # The OCI upload.

    def _processOCIUpload(self, build, directory):
        def path_of(name):
            return os.path.join(directory, name)

        documents, images = read_oci_upload_directory(directory)
        build.addFile(
            self._store(path_of(INDEX_FILE_NAME), INDEX_FILE_NAME, JSON_TYPE),
            media_type=MediaType.OCI_INDEX,
            kind=OCIFileKind.INDEX,
        )
        build.addFile(
            self._store(
                path_of(LAYOUT_FILE_NAME), LAYOUT_FILE_NAME, JSON_TYPE
            ),
            kind=OCIFileKind.OTHER,
        )
        seen = set()
        for document in documents:
            descriptor = document.descriptor
            seen.add(descriptor.digest)
            lfa = self._store(
                path_of(blob_file_name(descriptor.digest)),
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
                self._addOCILayer(build, directory, layer)

    def _addOCILayer(self, build, directory, layer):
        descriptor = layer.descriptor
        path = os.path.join(directory, blob_file_name(descriptor.digest))
        if os.path.exists(path):
            lfa = self._store(
                path,
                descriptor.digest.hex,
                descriptor.media_type or OCTET_STREAM,
                digest=descriptor.digest,
                size=descriptor.size,
            )
        else:
            lfa = self._reuse(
                descriptor.digest,
                descriptor.size,
                f"Layer {descriptor.digest} is neither in the upload nor "
                "in the librarian",
            )
        build.addFile(
            lfa,
            layer_file_digest=descriptor.digest,
            diff_id=layer.diff_id,
            media_type=descriptor.media_type,
            size=descriptor.size,
            kind=OCIFileKind.LAYER,
        )

    # The legacy upload.

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
                # Pushed and exported from later: refuse it now if it
                # does not describe the layers.
                check_legacy_config(
                    read_json_file(path, image.config_name), image
                )
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
            lfa = self._reuse(
                layer.digest,
                None,
                f"Missing layer file {layer.file_name} ({layer.digest})",
            )
        build.addFile(
            lfa,
            layer_file_digest=layer.digest,
            diff_id=layer.diff_id,
            media_type=LEGACY_LAYER_MEDIA_TYPE,
            size=lfa.content.filesize,
            kind=OCIFileKind.LAYER,
        )
