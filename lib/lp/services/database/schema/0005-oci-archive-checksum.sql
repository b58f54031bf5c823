-- Copyright 2026 Canonical Ltd.  This software is licensed under the
-- GNU Affero General Public License version 3 (see the file LICENSE).

SET client_min_messages=ERROR;

-- The size and sha256 of a FULLYBUILT build's generated archives
-- (format 'oci' or 'docker'), computed once by streaming the archive
-- (it is deterministic), so the build entry can state them without
-- reading the blobs on every request.

CREATE TABLE OCIArchiveChecksum (
    id SERIAL PRIMARY KEY,
    build INTEGER NOT NULL REFERENCES OCIRecipeBuild (id),
    format TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    CONSTRAINT ociarchivechecksum__build__format__key UNIQUE (build, format)
);
