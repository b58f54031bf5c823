# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Processing the files an OCI recipe build uploaded.

`OCIRecipeUpload.process(build)` has the shape of Launchpad's with the
project's patch series (``upstream/launchpad``): it walks the upload,
whose files sit in ``<leaf>/<archive id>/<distribution name>/``, and
records them as `OCIFile` rows of the build:

The OCI upload (``index.json`` and ``oci-layout`` there):
    `_processOCIUpload` reads it with `lp.oci.model.ocilayout.read_upload`
    (the index, every manifest and every config checked against their
    descriptors) and stores each blob once, as an `OCIFile` whose
    ``layer_file_digest`` is the blob digest ``sha256:<hex>``: from the
    upload, checked against the sha256 and size the librarian computed
    while storing it, or, when the build farm did not fetch it, linked
    from the file `IOCIFileSet.getReusableLayerFile` gives.
    ``index.json`` and ``oci-layout`` are stored too.

The legacy upload (``digests.json`` there):
    Each layer digests.json lists is linked from the librarian if it
    holds it, else stored from ``<layer_id>.tar.gz``; then every
    ``.json`` file is stored.

Harness only, around that shape:

- every file also records its media type, size and kind, and layers
  the diff_id their config lists (the web service and the archive
  export use them); a legacy upload's configs are recorded under their
  own digest and checked against digests.json (`check_legacy_config`),
  and its layer digests are normalised to ``sha256:<hex>``;
- a legacy layer is reused by its content's digest
  (`getReusableLayerFile`), not by the recorded digest alone;
- files go into the librarian by hard link when the upload directory
  is on the same file system (`ILibraryFileAliasSet.createFromPath`),
  never copied, and a file the build farm's downloads verified
  (recorded beside the upload, see `lp.buildmaster.verifiedfiles`) is
  not read at all: the librarian takes its digests after one ``fstat``;
- what it stores is made durable all at once when the caller commits
  (`LibrarianStorage.syncAtCommit`), not file by file, and the build's
  privacy is looked up once;
- `process` runs in its caller's transaction (`UploadProcessor`'s): it
  neither commits nor aborts, so dry runs work; it raises `UploadError`
  when the upload cannot be accepted, and the caller then aborts and
  calls `removeUnreferencedContent`;
- every file of the upload must be a regular file (no link, FIFO,
  directory or device: `check_regular_files`, and the librarian opens
  each without following links), every media type must follow RFC
  6838's grammar and a foreign layer's ``urls`` must be public
  ``https`` URLs (`check_oci_manifest`); an upload lists at most
  `MAX_UPLOAD_IMAGES` images (`check_image_count`); a legacy layer that
  digests.json does not name by its file's digest (one docker pulled)
  is checked against its diff_id (`check_legacy_layer`);
- fault checkpoints ``upload.file`` and ``upload.processed``.
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
from lp.oci.interfaces.ociupload import OCIUploadError
from lp.oci.model.ocilayout import (
    MAX_DOCUMENT_SIZE,
    OCILayoutError,
    parse_index,
    read_upload,
)
from lp.oci.model.ociupload import (
    LEGACY_LAYER_MEDIA_TYPE,
    check_image_count,
    check_legacy_config,
    check_legacy_layer,
    check_oci_manifest,
    parse_legacy_upload,
    read_json_file,
)
from lp.services.database.interfaces import IStore
from lp.services.librarian.interfaces import ILibraryFileAliasSet, UploadFailed
from lp.services.librarian.model import LibraryFileContent
from lp.services.librarian.storage import get_librarian_storage
from lp.services.osutils import (
    NotARegularFile,
    check_regular_files,
    open_regular,
)
from ocitypes.descriptor import MediaType
from ocitypes.digest import Digest
from ocitypes.faultpoint import checkpoint

JSON_TYPE = "application/json"


class OCIRecipeUpload:
    """An OCI recipe build's upload directory, ready to be processed.

    :param upload_path: The upload's leaf directory.
    :param logger: A `logging.Logger`.
    """

    def __init__(self, upload_path, logger):
        self.upload_path = upload_path
        self.logger = logger
        self.librarian = getUtility(ILibraryFileAliasSet)
        # The sha256 of every content this upload put in storage.
        self.stored_sha256s = set()
        # What the build farm's downloads verified, by file name.
        self.verified = read_verified_files(upload_path)

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

    def _addToLibrarian(self, path, build, content_type, sha256=None):
        """Store the file at `path` in the librarian for `build`.

        Harness only: linked, not copied (the upload is ours and not
        written again), taking what the downloads verified, with the
        content type given; ``sha256``, the content expected, is
        remembered for `removeUnreferencedContent` in case storing fails
        half way.
        """
        name = os.path.basename(path)
        if sha256 is not None:
            self.stored_sha256s.add(sha256)
        try:
            libraryfile = self.librarian.createFromPath(
                name,
                os.lstat(path).st_size,
                path,
                content_type,
                restricted=self.restricted,
                allow_zero_length=True,
                verified=self.verified.get(name),
            )
        except FileNotFoundError:
            raise UploadError(f"{name} is missing") from None
        except NotARegularFile as e:
            raise UploadError(f"{name} is {e.strerror}") from None
        except UploadFailed as e:
            raise UploadError(f"Cannot store {name}: {e}") from None
        self.stored_sha256s.add(libraryfile.content.sha256)
        checkpoint("upload.file")
        return libraryfile

    def _processOCIUpload(self, build, upload_path):
        """Store the files of an OCI upload.

        The documents are checked against their digests; layers are
        stored from the upload, checked by the digests the librarian
        computes as it stores them, or else linked from a file that the
        librarian already has.
        """
        try:
            # Harness only: the bound on images, before any is read.
            with open_regular(os.path.join(upload_path, "index.json")) as f:
                descriptors = parse_index(f.read(MAX_DOCUMENT_SIZE + 1))
            check_image_count(len(descriptors), "index.json")
            manifests = read_upload(upload_path)
            # Harness only: what ocilayout passes on unchecked.
            for manifest in manifests:
                check_oci_manifest(manifest)
        except (OCILayoutError, OCIUploadError) as e:
            raise UploadError(str(e))
        file_set = getUtility(IOCIFileSet)
        seen = set()
        for manifest in manifests:
            # Harness only: what each blob is, and each layer's diff_id.
            details = {
                manifest.descriptor.digest: {"kind": OCIFileKind.MANIFEST},
                manifest.config.digest: {"kind": OCIFileKind.CONFIG},
            }
            diff_ids = _diff_ids(upload_path, manifest)
            for layer, diff_id in zip(manifest.layers, diff_ids):
                details.setdefault(
                    layer.digest,
                    {"kind": OCIFileKind.LAYER, "diff_id": diff_id},
                )
            for descriptor in [manifest.descriptor, manifest.config] + (
                manifest.layers
            ):
                if descriptor.digest in seen:
                    continue
                seen.add(descriptor.digest)
                path = os.path.join(upload_path, descriptor.file_name)
                self.logger.debug(f"Blob: {descriptor.digest}")
                if os.path.lexists(path):
                    libraryfile = self._addToLibrarian(
                        path, build, descriptor.media_type, descriptor.hex
                    )
                    content = libraryfile.content
                    if (content.sha256, content.filesize) != (
                        descriptor.hex,
                        descriptor.size,
                    ):
                        raise UploadError(
                            f"{descriptor.file_name} does not match its "
                            f"descriptor."
                        )
                else:
                    # The build farm did not fetch it: the librarian has it.
                    existing_file = file_set.getReusableLayerFile(
                        descriptor.digest, descriptor.size
                    )
                    if existing_file is None:
                        raise UploadError(
                            f"Missing layer file: {descriptor.file_name}."
                        )
                    libraryfile = existing_file.library_file
                build.addFile(
                    libraryfile,
                    layer_file_digest=descriptor.digest,
                    media_type=descriptor.media_type,
                    size=descriptor.size,
                    **details[descriptor.digest],
                )
        for filename, kind, media_type in (
            ("index.json", OCIFileKind.INDEX, MediaType.OCI_INDEX),
            ("oci-layout", OCIFileKind.OTHER, None),
        ):
            libraryfile = self._addToLibrarian(
                os.path.join(upload_path, filename), build, JSON_TYPE
            )
            build.addFile(
                libraryfile,
                layer_file_digest=None,
                media_type=media_type,
                kind=kind,
            )

    def _processLegacyUpload(self, build, dirpath, filenames):
        """Store the files of a legacy upload."""
        digest_path = os.path.join(dirpath, "digests.json")
        self.logger.debug(f"Digest path: {digest_path}")
        # Harness only: manifest.json and digests.json, bounded and
        # paired.
        images = parse_legacy_upload(
            read_json_file(os.path.join(dirpath, "manifest.json")),
            read_json_file(digest_path),
        )
        file_set = getUtility(IOCIFileSet)
        seen = set()
        configs = {}
        # Foreach id in digest file, find matching layer
        for image in images:
            configs[image.config_name] = image
            for layer in image.layers:
                if layer.digest in seen:
                    continue
                seen.add(layer.digest)
                layer_path = os.path.join(dirpath, layer.file_name)
                self.logger.debug(f"Layer path: {layer_path}")
                # If the file is already in the librarian (and not
                # restricted to another build), we can just reuse it.
                existing_file = file_set.getReusableLayerFile(layer.digest)
                if existing_file is not None:
                    libraryfile = existing_file.library_file
                elif not os.path.lexists(layer_path):
                    raise UploadError(
                        f"Missing layer file: {layer.layer_id} "
                        f"({layer.digest})."
                    )
                else:
                    # Upload layer
                    libraryfile = self._addToLibrarian(
                        layer_path, build, "application/gzip"
                    )
                    # Harness only: verified like any other content: by
                    # its digest, or else (a layer docker pulled, named
                    # by the registry's digest of another compression)
                    # by its diff_id.
                    sha256 = libraryfile.content.sha256
                    if sha256 != layer.digest.hex:
                        try:
                            check_legacy_layer(
                                get_librarian_storage().getPath(sha256),
                                layer.diff_id,
                                layer.file_name,
                            )
                        except OCIUploadError as e:
                            raise UploadError(str(e)) from None
                build.addFile(
                    libraryfile,
                    layer_file_digest=layer.digest,
                    diff_id=layer.diff_id,
                    media_type=LEGACY_LAYER_MEDIA_TYPE,
                    size=libraryfile.content.filesize,
                    kind=OCIFileKind.LAYER,
                )
        for config_name, image in configs.items():
            path = os.path.join(dirpath, config_name)
            if not os.path.lexists(path):
                raise UploadError(f"Config {config_name} is missing")
            # Harness only: pushed and exported from later, so refused
            # now if it does not describe the layers.
            check_legacy_config(read_json_file(path, config_name), image)
        # Upload all json files
        for filename in sorted(filenames):
            if filename.endswith(".json"):
                file_path = os.path.join(dirpath, filename)
                self.logger.debug(f"JSON file: {file_path}")
                libraryfile = self._addToLibrarian(file_path, build, JSON_TYPE)
                if filename in configs:
                    # Harness only: a config is found by its digest too.
                    build.addFile(
                        libraryfile,
                        layer_file_digest=Digest(
                            "sha256", libraryfile.content.sha256
                        ),
                        media_type=MediaType.DOCKER_CONFIG,
                        kind=OCIFileKind.CONFIG,
                    )
                else:
                    # This doesn't have a digest as it's not a layer file.
                    build.addFile(libraryfile, layer_file_digest=None)

    def process(self, build):
        """Process this upload, loading it into the database.

        Harness only: nothing is committed or aborted.

        :raises UploadError: if the upload cannot be accepted.
        """
        self.logger.debug("Beginning processing of %s.", self.upload_path)
        # Harness only: looked up once, not for every file.
        self.restricted = build.is_private
        # Harness only: what is stored is synced all at once, when the
        # caller commits.
        with get_librarian_storage().syncAtCommit():
            self._processFiles(build)
        checkpoint("upload.processed")
        # The master verifies the status to confirm successful upload.
        self.logger.debug("Updating %s" % build.title)
        build.updateStatus(BuildStatus.FULLYBUILT)
        self.logger.debug("Finished processing %s.", self.upload_path)

    def _processFiles(self, build):
        """Find the upload's files and store them."""
        # Find digest file
        for dirpath, _, filenames in os.walk(self.upload_path):
            if dirpath == self.upload_path:
                # All relevant files will be in a subdirectory.
                continue
            # An OCI image layout rather than the legacy files?
            oci = "index.json" in filenames and "oci-layout" in filenames
            if oci or "digests.json" in filenames:
                # Harness only: read nothing through a link, nor from a
                # FIFO or device, nor a directory as a file.
                try:
                    check_regular_files(dirpath)
                except NotARegularFile as e:
                    raise UploadError(
                        f"{os.path.basename(e.filename)} is {e.strerror}"
                    ) from None
            if oci:
                self._processOCIUpload(build, dirpath)
                break
            if "digests.json" not in filenames:
                continue
            self._processLegacyUpload(build, dirpath, filenames)
            # We've found digest, we can stop now
            break
        else:
            # If we get here, we've not got a digests.json,
            # something has gone wrong
            raise UploadError(
                "Build did not produce index.json or digests.json"
            )


def _diff_ids(upload_path, manifest):
    """The diff_ids a manifest's config lists, one per layer, or Nones.

    Harness only (recorded for the web service): the config has been
    checked against its descriptor; one that does not list a diff_id for
    each layer gets none recorded, as Launchpad records none.
    """
    config = read_json_file(
        os.path.join(upload_path, manifest.config.file_name),
        manifest.config.digest,
    )
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(manifest.layers):
        return [None] * len(manifest.layers)
    parsed = []
    for diff_id in diff_ids:
        try:
            parsed.append(Digest.parse(diff_id))
        except ValueError:
            parsed.append(None)
    return parsed
