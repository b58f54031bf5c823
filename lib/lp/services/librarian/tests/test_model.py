# Copyright 2026 Canonical Ltd.  This software is licensed under the
# GNU Affero General Public License version 3 (see the file LICENSE).

"""Tests for the librarian's database records, on every backend."""

__all__ = []

import hashlib
import io
import os

import transaction
from fixtures import MockPatch, TempDir
from testtools.matchers import MatchesStructure, StartsWith
from zope.component import getUtility

from lp.app.errors import NotFoundError
from lp.services.database.interfaces import IStore
from lp.services.librarian import model
from lp.services.librarian.interfaces import (
    ContentMismatch,
    ILibraryFileAliasSet,
    UploadFailed,
)
from lp.services.librarian.model import LibraryFileAlias, LibraryFileContent
from lp.services.librarian.storage import get_librarian_storage
from lp.testing import TestCaseWithFactory
from lp.testing.layers import (
    LaunchpadZopelessLayer,
    SQLiteLaunchpadZopelessLayer,
)


class TestLibraryFileAliasSet(TestCaseWithFactory):
    layer = LaunchpadZopelessLayer

    def create(self, content, name="file.bin", size=None, **kwargs):
        return getUtility(ILibraryFileAliasSet).create(
            name,
            len(content) if size is None else size,
            io.BytesIO(content),
            "application/octet-stream",
            **kwargs,
        )

    def countRows(self):
        store = IStore(LibraryFileAlias)
        return (
            store.find(LibraryFileContent).count(),
            store.find(LibraryFileAlias).count(),
        )

    def test_create(self):
        lfa = self.create(b"content", name="a.json")
        transaction.commit()
        self.assertThat(
            lfa,
            MatchesStructure.byEquality(
                filename="a.json", mimetype="application/octet-stream"
            ),
        )
        self.assertThat(
            lfa.content,
            MatchesStructure.byEquality(
                filesize=7,
                sha256=hashlib.sha256(b"content").hexdigest(),
                sha1=hashlib.sha1(b"content").hexdigest(),
                md5=hashlib.md5(b"content").hexdigest(),
            ),
        )
        self.assertIsNotNone(lfa.date_created.tzinfo)

    def test_same_content_shares_one_content_row(self):
        first = self.create(b"shared", name="one")
        second = self.create(b"shared", name="two")
        self.assertNotEqual(first.id, second.id)
        self.assertEqual(first.content.id, second.content.id)
        self.assertEqual((1, 2), self.countRows())

    def test_new_content_row_looked_up_once(self):
        # Upload processing stores thousands of new documents: the row
        # is inserted, then read once, not looked for first.
        lookups = []
        real_find = model._find_content

        def find_content(store, sha256):
            lookups.append(sha256)
            return real_find(store, sha256)

        self.useFixture(
            MockPatch(
                "lp.services.librarian.model._find_content", find_content
            )
        )
        lfa = self.create(b"new content")
        self.assertEqual([lfa.content.sha256], lookups)
        # Content already there is found once too.
        self.create(b"new content", name="again")
        self.assertEqual([lfa.content.sha256] * 2, lookups)
        self.assertEqual((1, 2), self.countRows())

    def test_mismatch_stores_nothing(self):
        wrong = hashlib.sha256(b"other").hexdigest()
        self.assertRaises(
            ContentMismatch, self.create, b"data", expected_sha256=wrong
        )
        self.assertRaises(ContentMismatch, self.create, b"data", size=3)
        self.assertEqual((0, 0), self.countRows())
        storage = get_librarian_storage()
        self.assertFalse(storage.exists(hashlib.sha256(b"data").hexdigest()))
        self.assertEqual([], os.listdir(storage.incoming))

    def test_createFromPath_links(self):
        path = os.path.join(self.useFixture(TempDir()).path, "upload")
        with open(path, "wb") as f:
            f.write(b"linked")
        sha256 = hashlib.sha256(b"linked").hexdigest()
        lfa = getUtility(ILibraryFileAliasSet).createFromPath(
            "linked.bin",
            6,
            path,
            "application/octet-stream",
            expected_sha256=sha256,
        )
        transaction.commit()
        self.assertThat(
            lfa.content,
            MatchesStructure.byEquality(
                filesize=6,
                sha256=sha256,
                sha1=hashlib.sha1(b"linked").hexdigest(),
                md5=hashlib.md5(b"linked").hexdigest(),
            ),
        )
        self.assertEqual("linked.bin", lfa.filename)
        self.assertEqual(b"linked", lfa.read())
        lfa.close()
        storage = get_librarian_storage()
        if os.stat(path).st_dev == os.stat(storage.root).st_dev:
            self.assertTrue(os.path.samefile(path, storage.getPath(sha256)))

    def test_createFromPath_mismatch_stores_nothing(self):
        path = os.path.join(self.useFixture(TempDir()).path, "upload")
        with open(path, "wb") as f:
            f.write(b"data")
        self.assertRaises(
            ContentMismatch,
            getUtility(ILibraryFileAliasSet).createFromPath,
            "x",
            5,
            path,
            "application/octet-stream",
        )
        self.assertEqual((0, 0), self.countRows())
        self.assertEqual([], os.listdir(get_librarian_storage().incoming))

    def test_zero_length_refused_unless_allowed(self):
        self.assertRaises(UploadFailed, self.create, b"")
        lfa = self.create(b"", allow_zero_length=True)
        self.assertEqual(0, lfa.content.filesize)

    def test_bad_names_refused(self):
        for name in ("", "a/b", "..", "."):
            self.assertRaises(UploadFailed, self.create, b"x", name=name)

    def test_open_read_close(self):
        lfa = self.factory.makeLibraryFileAlias(content=b"0123456789")
        stream = lfa.open()
        self.assertEqual(b"0123", stream.read(4))
        self.assertEqual(b"4567", lfa.read(4))
        lfa.close()
        self.assertEqual(b"0123456789", lfa.read())
        lfa.close()

    def test_getURL(self):
        lfa = self.factory.makeLibraryFileAlias(content=b"x")
        self.assertThat(lfa.getURL(), StartsWith("file:///"))
        self.assertEqual(lfa.getURL(), lfa.http_url)
        storage = get_librarian_storage()
        self.addCleanup(setattr, storage, "download_url", None)
        storage.download_url = "https://librarian.example/"
        transaction.commit()
        self.assertEqual(
            "https://librarian.example/%d/%s" % (lfa.id, lfa.filename),
            lfa.getURL(),
        )

    def test_getitem(self):
        lfa = self.factory.makeLibraryFileAlias()
        alias_set = getUtility(ILibraryFileAliasSet)
        self.assertEqual(lfa, alias_set[lfa.id])
        self.assertRaises(NotFoundError, alias_set.__getitem__, lfa.id + 1)

    def test_lookup_by_sha256(self):
        sha256 = hashlib.sha256(b"known").hexdigest()
        alias_set = getUtility(ILibraryFileAliasSet)
        self.assertIsNone(alias_set.getContentBySHA256(sha256))
        first = self.factory.makeLibraryFileAlias(content=b"known")
        second = self.factory.makeLibraryFileAlias(content=b"known")
        self.assertEqual([first, second], list(alias_set.findBySHA256(sha256)))
        self.assertEqual(first.content, alias_set.getContentBySHA256(sha256))
        # Content whose bytes have gone is not offered for reuse.
        get_librarian_storage().remove(sha256)
        self.assertIsNone(alias_set.getContentBySHA256(sha256))

    def test_abort_leaves_no_rows(self):
        self.factory.makeLibraryFileAlias()
        transaction.abort()
        self.assertEqual((0, 0), self.countRows())


class TestLibraryFileAliasSetSQLite(TestLibraryFileAliasSet):
    layer = SQLiteLaunchpadZopelessLayer
