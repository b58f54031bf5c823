-- Copyright 2026 Canonical Ltd.  This software is licensed under the
-- GNU Affero General Public License version 3 (see the file LICENSE).

-- The librarian, OCI recipes, their builds, the files those builds
-- produce, and the jobs that push builds to registries.
-- Timestamps are naive UTC.

CREATE TABLE LibraryFileContent (
    id SERIAL PRIMARY KEY,
    datecreated TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    filesize BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    sha1 TEXT NOT NULL,
    md5 TEXT NOT NULL
);
CREATE INDEX libraryfilecontent__sha256__idx
    ON LibraryFileContent (sha256);

CREATE TABLE LibraryFileAlias (
    id SERIAL PRIMARY KEY,
    content INTEGER REFERENCES LibraryFileContent (id),
    filename TEXT NOT NULL,
    mimetype TEXT NOT NULL,
    date_created TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE,
    restricted BOOLEAN NOT NULL DEFAULT FALSE,
    hits INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX libraryfilealias__content__idx ON LibraryFileAlias (content);

CREATE TABLE OCIRecipe (
    id SERIAL PRIMARY KEY,
    date_created TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    owner_name TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    registry_url TEXT,
    image_name TEXT,
    CONSTRAINT ocirecipe__owner_name__name__key UNIQUE (owner_name, name)
);

CREATE TABLE OCIRecipeBuild (
    id SERIAL PRIMARY KEY,
    recipe INTEGER NOT NULL REFERENCES OCIRecipe (id),
    arch_tag TEXT NOT NULL,
    virtualized BOOLEAN NOT NULL DEFAULT TRUE,
    status INTEGER NOT NULL,
    date_created TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    date_started TIMESTAMP WITHOUT TIME ZONE,
    date_finished TIMESTAMP WITHOUT TIME ZONE,
    date_first_dispatched TIMESTAMP WITHOUT TIME ZONE,
    log INTEGER REFERENCES LibraryFileAlias (id),
    upload_log INTEGER REFERENCES LibraryFileAlias (id),
    failure_count INTEGER NOT NULL DEFAULT 0,
    failure_reason TEXT
);
CREATE INDEX ocirecipebuild__recipe__idx ON OCIRecipeBuild (recipe);

CREATE TABLE OCIFile (
    id SERIAL PRIMARY KEY,
    build INTEGER NOT NULL REFERENCES OCIRecipeBuild (id),
    library_file INTEGER NOT NULL REFERENCES LibraryFileAlias (id),
    layer_file_digest TEXT,
    date_last_used TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    diff_id TEXT,
    media_type TEXT,
    size BIGINT,
    kind INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ocifile__build__idx ON OCIFile (build);
CREATE INDEX ocifile__layer_file_digest__idx ON OCIFile (layer_file_digest);
CREATE INDEX ocifile__library_file__idx ON OCIFile (library_file);

CREATE TABLE Job (
    id SERIAL PRIMARY KEY,
    status INTEGER NOT NULL,
    date_created TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    date_started TIMESTAMP WITHOUT TIME ZONE,
    date_finished TIMESTAMP WITHOUT TIME ZONE,
    scheduled_start TIMESTAMP WITHOUT TIME ZONE,
    lease_token TEXT,
    lease_expires TIMESTAMP WITHOUT TIME ZONE,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER NOT NULL DEFAULT 0,
    log TEXT
);
CREATE INDEX job__status__idx ON Job (status);

CREATE TABLE OCIRecipeBuildJob (
    job INTEGER PRIMARY KEY REFERENCES Job (id),
    build INTEGER NOT NULL REFERENCES OCIRecipeBuild (id),
    job_type INTEGER NOT NULL,
    json_data TEXT NOT NULL
);
CREATE INDEX ocirecipebuildjob__build__job_type__idx
    ON OCIRecipeBuildJob (build, job_type);
