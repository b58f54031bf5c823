# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Database records of the files held by the librarian."""

__all__ = [
    "LibraryFileAlias",
    "LibraryFileAliasSet",
    "LibraryFileContent",
]

from datetime import timezone
from urllib.parse import quote

from storm.locals import Bool, DateTime, Int, Reference, Unicode
from zope.interface import implementer

from lp.app.errors import NotFoundError
from lp.services.database.constants import utc_now
from lp.services.database.interfaces import IPrimaryStore, IStore
from lp.services.database.retry import RetryTransaction
from lp.services.database.stormbase import StormBase
from lp.services.librarian.interfaces import (
    ILibraryFileAlias,
    ILibraryFileAliasSet,
    ILibraryFileContent,
    UploadFailed,
)
from lp.services.librarian.storage import get_librarian_storage


@implementer(ILibraryFileContent)
class LibraryFileContent(StormBase):
    """See `ILibraryFileContent`."""

    __storm_table__ = "LibraryFileContent"

    id = Int(primary=True)
    datecreated = DateTime(allow_none=False, tzinfo=timezone.utc)
    filesize = Int(allow_none=False)
    sha256 = Unicode(allow_none=False)
    sha1 = Unicode(allow_none=False)
    # None for content stored from a `VerifiedFile` (not read again).
    md5 = Unicode(allow_none=True)

    def __init__(self, filesize, sha256, sha1, md5, datecreated=None):
        super().__init__()
        self.filesize = filesize
        self.sha256 = sha256
        self.sha1 = sha1
        self.md5 = md5
        self.datecreated = datecreated or utc_now()


@implementer(ILibraryFileAlias)
class LibraryFileAlias(StormBase):
    """See `ILibraryFileAlias`."""

    __storm_table__ = "LibraryFileAlias"

    id = Int(primary=True)
    contentID = Int(name="content", allow_none=True)
    content = Reference(contentID, "LibraryFileContent.id")
    filename = Unicode(allow_none=False)
    mimetype = Unicode(allow_none=False)
    date_created = DateTime(allow_none=False, tzinfo=timezone.utc)
    expires = DateTime(allow_none=True, tzinfo=timezone.utc)
    restricted = Bool(allow_none=False)
    hits = Int(allow_none=False)

    _datafile = None

    def __init__(
        self, content, filename, mimetype, expires=None, restricted=False
    ):
        super().__init__()
        self.content = content
        self.filename = filename
        self.mimetype = mimetype
        self.expires = expires
        self.restricted = restricted
        self.hits = 0
        self.date_created = utc_now()

    def __repr__(self):
        return f"<LibraryFileAlias {self.id} {self.filename!r}>"

    def _checkContent(self):
        if self.content is None:
            raise NotFoundError(f"{self.filename} has been deleted")
        return self.content

    def open(self, timeout=None):
        """See `ILibraryFileAlias`."""
        self.close()
        content = self._checkContent()
        self._datafile = get_librarian_storage().open(content.sha256)
        return self._datafile

    def read(self, chunksize=None, timeout=None):
        """See `ILibraryFileAlias`."""
        if self._datafile is None:
            self.open(timeout=timeout)
        if chunksize is None:
            return self._datafile.read()
        return self._datafile.read(chunksize)

    def close(self):
        """See `ILibraryFileAlias`."""
        if self._datafile is not None:
            self._datafile.close()
            self._datafile = None

    def getURL(self, secure=True, include_token=False):
        """See `ILibraryFileAlias`."""
        storage = get_librarian_storage()
        if storage.download_url:
            return "%s/%d/%s" % (
                storage.download_url.rstrip("/"),
                self.id,
                quote(self.filename),
            )
        content = self._checkContent()
        return "file://" + quote(storage.getPath(content.sha256))

    @property
    def http_url(self):
        """See `ILibraryFileAlias`."""
        return self.getURL()


def _find_content(store, sha256):
    return store.find(
        LibraryFileContent, LibraryFileContent.sha256 == sha256
    ).one()


def _insert_or_get_content(stored):
    """The one `LibraryFileContent` row for ``stored``, made if need be.

    ``sha256`` is unique (schema patch 0006): two transactions storing
    the same new content at once insert one row.  On PostgreSQL the
    loser of that race either waits for the winner and finds its row
    (read committed) or gets a serialization failure (repeatable read,
    the default here) that `lp.services.database.retry` classifies as
    retryable: its caller runs the transaction again and then finds the
    row.

    The row is inserted first (a no-op for content already there) and
    then read once: most content stored is new (one query fewer each),
    and content already there costs one cheap statement more.
    """
    store = IPrimaryStore(LibraryFileContent)
    store.execute(
        "INSERT INTO LibraryFileContent "
        "(datecreated, filesize, sha256, sha1, md5) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
        (
            utc_now().replace(tzinfo=None),
            stored.size,
            stored.sha256,
            stored.sha1,
            stored.md5,
        ),
    )
    content = _find_content(store, stored.sha256)
    if content is None:
        raise RetryTransaction(
            f"Content {stored.sha256} was stored by a concurrent "
            "transaction not visible to this one"
        )
    return content


def _check_new_file(name, size, allow_zero_length):
    if not name or "/" in name or name in (".", ".."):
        raise UploadFailed(f"Invalid file name {name!r}")
    if size == 0 and not allow_zero_length:
        raise UploadFailed("Cannot store a zero-length file")


@implementer(ILibraryFileAliasSet)
class LibraryFileAliasSet:
    """See `ILibraryFileAliasSet`."""

    def create(
        self,
        name,
        size,
        file,
        contentType,
        expires=None,
        restricted=False,
        allow_zero_length=False,
        expected_sha256=None,
    ):
        """See `ILibraryFileAliasSet`."""
        _check_new_file(name, size, allow_zero_length)
        stored = get_librarian_storage().store(
            file, expected_sha256=expected_sha256, expected_size=size
        )
        return self._addAlias(
            stored, name, contentType, expires, restricted, allow_zero_length
        )

    def createFromPath(
        self,
        name,
        size,
        path,
        contentType,
        expires=None,
        restricted=False,
        allow_zero_length=False,
        expected_sha256=None,
        verified=None,
    ):
        """See `ILibraryFileAliasSet`."""
        _check_new_file(name, size, allow_zero_length)
        stored = get_librarian_storage().storePath(
            path,
            expected_sha256=expected_sha256,
            expected_size=size,
            verified=verified,
        )
        return self._addAlias(
            stored, name, contentType, expires, restricted, allow_zero_length
        )

    def _addAlias(
        self, stored, name, contentType, expires, restricted, allow_zero_length
    ):
        if stored.size == 0 and not allow_zero_length:
            raise UploadFailed("Cannot store a zero-length file")
        content = _insert_or_get_content(stored)
        store = IPrimaryStore(LibraryFileAlias)
        alias = LibraryFileAlias(
            content=content,
            filename=name,
            mimetype=contentType,
            expires=expires,
            restricted=restricted,
        )
        store.add(alias)
        store.flush()
        return alias

    def __getitem__(self, key):
        """See `ILibraryFileAliasSet`."""
        alias = IStore(LibraryFileAlias).get(LibraryFileAlias, int(key))
        if alias is None:
            raise NotFoundError(key)
        return alias

    def findBySHA256(self, sha256):
        """See `ILibraryFileAliasSet`."""
        return (
            IStore(LibraryFileAlias)
            .find(
                LibraryFileAlias,
                LibraryFileAlias.contentID == LibraryFileContent.id,
                LibraryFileContent.sha256 == sha256,
            )
            .order_by(LibraryFileAlias.id)
        )

    def getContentBySHA256(self, sha256):
        """See `ILibraryFileAliasSet`."""
        content = (
            IStore(LibraryFileContent)
            .find(LibraryFileContent, LibraryFileContent.sha256 == sha256)
            .order_by(LibraryFileContent.id)
            .first()
        )
        if content is None:
            return None
        if not get_librarian_storage().isIntact(sha256, content.filesize):
            return None
        return content
