-- Copyright 2026 Canonical Ltd.  This software is licensed under the
-- GNU Affero General Public License version 3 (see the file LICENSE).

SET client_min_messages=ERROR;

-- One content row per sha256: the librarian is content-addressed, and
-- two uploads storing the same new content at once must share one row
-- (LibraryFileAliasSet inserts or gets it; the loser of a race on
-- PostgreSQL retries its transaction).  Rows duplicated before this
-- patch are merged into the oldest one.

UPDATE LibraryFileAlias
    SET content = (
        SELECT MIN(keep.id)
        FROM LibraryFileContent AS keep, LibraryFileContent AS dup
        WHERE dup.id = LibraryFileAlias.content
            AND keep.sha256 = dup.sha256)
    WHERE content IS NOT NULL;

DELETE FROM LibraryFileContent
    WHERE id NOT IN (
        SELECT MIN(id) FROM LibraryFileContent GROUP BY sha256);

DROP INDEX libraryfilecontent__sha256__idx;

CREATE UNIQUE INDEX libraryfilecontent__sha256__key
    ON LibraryFileContent (sha256);
