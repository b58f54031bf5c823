# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Interfaces for the librarian."""

__all__ = [
    "ContentMismatch",
    "ILibrarianStorage",
    "ILibraryFileAlias",
    "ILibraryFileAliasSet",
    "ILibraryFileContent",
    "UploadFailed",
]

from zope.interface import Attribute, Interface
from zope.schema import Bool, Datetime, Int, TextLine


class UploadFailed(Exception):
    """A file could not be stored in the librarian."""


class ContentMismatch(UploadFailed):
    """The content does not have the size or sha256 the caller expected.

    Nothing is stored when this is raised.
    """


class ILibraryFileContent(Interface):
    """The content of a file in the librarian; one per distinct content."""

    id = Int(title="Identifier", required=True, readonly=True)
    datecreated = Datetime(title="Date created", required=True, readonly=True)
    filesize = Int(title="File size", required=True, readonly=True)
    sha256 = TextLine(title="SHA-256 hash", required=True, readonly=True)
    sha1 = TextLine(title="SHA-1 hash", required=True, readonly=True)
    md5 = TextLine(title="MD5 hash", required=True, readonly=True)


class ILibraryFileAlias(Interface):
    """A name under which some librarian content is known."""

    id = Int(title="Identifier", required=True, readonly=True)
    content = Attribute("The `ILibraryFileContent`, or None if expunged.")
    filename = TextLine(title="Filename", required=True, readonly=True)
    mimetype = TextLine(title="MIME type", required=True, readonly=True)
    date_created = Datetime(title="Date created", required=True, readonly=True)
    expires = Datetime(title="Expiry time", required=False, readonly=True)
    restricted = Bool(title="Restricted", required=True, readonly=True)
    http_url = Attribute("The URL of this file (see `getURL`).")

    def open(timeout=None):
        """Open the content for reading and return the binary stream.

        The stream is also used by `read` until `close` is called.
        """

    def read(chunksize=None, timeout=None):
        """Read from the stream `open` returned, opening it if needed.

        Without ``chunksize``, read everything: only for small files.
        """

    def close():
        """Close the stream `open` returned, if any."""

    def getURL(secure=True, include_token=False):
        """A URL from which the content can be fetched.

        The librarian's download URL when one is configured, otherwise a
        ``file:`` URL of the stored content.
        """


class ILibraryFileAliasSet(Interface):
    """Creating and finding `ILibraryFileAlias` objects."""

    def create(
        name,
        size,
        file,
        contentType,
        expires=None,
        restricted=False,
        allow_zero_length=False,
        expected_sha256=None,
    ):
        """Store the content of ``file`` under ``name``.

        ``file`` is read in chunks to its end.  Content already in the
        librarian is not stored again: the new alias shares the existing
        `ILibraryFileContent`.

        :param size: The number of bytes expected, or None to accept any.
        :param expected_sha256: The hex sha256 expected, or None.
        :raises ContentMismatch: if ``size`` or ``expected_sha256`` do
            not match; nothing is stored.
        :return: The new `ILibraryFileAlias`.
        """

    def createFromPath(
        name,
        size,
        path,
        contentType,
        expires=None,
        restricted=False,
        allow_zero_length=False,
        expected_sha256=None,
    ):
        """Like `create`, for a file on disk taken by hard link.

        See `ILibrarianStorage.storePath`: the file at ``path`` is not
        copied when it can be linked, and must not be modified in place
        afterwards.
        """

    def __getitem__(key):
        """The `ILibraryFileAlias` with this id; `NotFoundError` if none."""

    def findBySHA256(sha256):
        """The aliases of content with this hex sha256, oldest first."""

    def getContentBySHA256(sha256):
        """The `ILibraryFileContent` with this hex sha256, or None.

        Only content whose bytes are still in storage and intact
        (`ILibrarianStorage.isIntact`: damaged bytes are quarantined)
        is returned, so a caller can rely on it to avoid uploading the
        bytes again.
        """


class ILibrarianStorage(Interface):
    """Where the librarian keeps file contents."""

    root = Attribute("The directory holding the contents.")
    download_url = Attribute(
        "Base URL under which `getURL` publishes files, or None."
    )

    def store(file, expected_sha256=None, expected_size=None):
        """Copy ``file`` into storage, atomically and verified.

        :raises ContentMismatch: if the content does not match the
            expectations; nothing is left behind.
        :return: A `StoredContent` (sha256, sha1, md5, size).
        """

    def storePath(path, expected_sha256=None, expected_size=None):
        """Store the file at ``path``, atomically and verified, by hard link.

        Like `store`, but the file is hard-linked into storage rather
        than copied when it is on the same file system (copied
        otherwise), so its content is read once and never written again.
        ``path`` itself is left in place; the caller must not modify that
        file in place afterwards (replacing or deleting it is fine).

        :raises ContentMismatch: if the content does not match the
            expectations; nothing is left in storage.
        :return: A `StoredContent` (sha256, sha1, md5, size).
        """

    def exists(sha256):
        """Whether content with this hex sha256 is stored."""

    def checkContent(sha256, expected_size=None):
        """None if the stored content has this sha256 (and size), else
        a one-line reason (missing, wrong size, wrong sha256)."""

    def isIntact(sha256, expected_size=None):
        """Whether stored content may be reused instead of fetched again.

        Damaged content is logged and quarantined (moved under
        ``<root>/quarantine/``), so that storing it again puts good
        bytes back; missing content is logged.
        """

    def quarantine(sha256, reason):
        """Move stored content aside; return where, or None if gone."""

    def open(sha256):
        """Open stored content for binary reading."""

    def getPath(sha256):
        """The path at which content with this sha256 is (or would be)."""

    def remove(sha256):
        """Delete stored content, if present."""
