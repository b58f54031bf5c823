-- Copyright 2026 Canonical Ltd.  This software is licensed under the
-- GNU Affero General Public License version 3 (see the file LICENSE).

SET client_min_messages=ERROR;

-- Launchpad's build farm tables, with the columns the OCI build path
-- uses: people, processors, distributions and their archives, builders,
-- build farm jobs and the build queue.  OCIRecipeBuild gets Launchpad's
-- columns in place of its architecture tag.

CREATE TABLE Person (
    id SERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    displayname TEXT NOT NULL,
    CONSTRAINT person__name__key UNIQUE (name)
);

CREATE TABLE Processor (
    id SERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    CONSTRAINT processor__name__key UNIQUE (name)
);

CREATE TABLE Distribution (
    id SERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    displayname TEXT NOT NULL,
    CONSTRAINT distribution__name__key UNIQUE (name)
);

CREATE TABLE DistroSeries (
    id SERIAL PRIMARY KEY,
    distribution INTEGER NOT NULL REFERENCES Distribution (id),
    name TEXT NOT NULL,
    CONSTRAINT distroseries__distribution__name__key
        UNIQUE (distribution, name)
);

CREATE TABLE DistroArchSeries (
    id SERIAL PRIMARY KEY,
    distroseries INTEGER NOT NULL REFERENCES DistroSeries (id),
    processor INTEGER NOT NULL REFERENCES Processor (id),
    architecturetag TEXT NOT NULL,
    CONSTRAINT distroarchseries__distroseries__architecturetag__key
        UNIQUE (distroseries, architecturetag)
);

CREATE TABLE Archive (
    id SERIAL PRIMARY KEY,
    distribution INTEGER NOT NULL REFERENCES Distribution (id),
    purpose INTEGER NOT NULL,
    private BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX archive__distribution__purpose__idx
    ON Archive (distribution, purpose);

CREATE TABLE Builder (
    id SERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    processor INTEGER NOT NULL REFERENCES Processor (id),
    virtualized BOOLEAN NOT NULL DEFAULT TRUE,
    vm_host TEXT,
    builderok BOOLEAN NOT NULL DEFAULT TRUE,
    failnotes TEXT,
    failure_count INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT builder__name__key UNIQUE (name)
);

CREATE TABLE BuildFarmJob (
    id SERIAL PRIMARY KEY,
    job_type INTEGER NOT NULL,
    status INTEGER NOT NULL,
    date_created TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    date_finished TIMESTAMP WITHOUT TIME ZONE,
    builder INTEGER REFERENCES Builder (id),
    failure_count INTEGER NOT NULL DEFAULT 0,
    archive INTEGER REFERENCES Archive (id)
);
CREATE INDEX buildfarmjob__builder__idx ON BuildFarmJob (builder);
CREATE INDEX buildfarmjob__archive__idx ON BuildFarmJob (archive);

CREATE TABLE BuildQueue (
    id SERIAL PRIMARY KEY,
    builder INTEGER REFERENCES Builder (id),
    logtail TEXT,
    lastscore INTEGER,
    manual BOOLEAN NOT NULL DEFAULT FALSE,
    estimated_duration INTERVAL NOT NULL,
    processor INTEGER REFERENCES Processor (id),
    virtualized BOOLEAN,
    build_farm_job INTEGER NOT NULL REFERENCES BuildFarmJob (id),
    status INTEGER NOT NULL DEFAULT 0,
    date_started TIMESTAMP WITHOUT TIME ZONE,
    CONSTRAINT buildqueue__build_farm_job__key UNIQUE (build_farm_job)
);
CREATE UNIQUE INDEX buildqueue__builder__key ON BuildQueue (builder);

ALTER TABLE OCIRecipe ADD COLUMN private BOOLEAN NOT NULL DEFAULT FALSE;

ALTER TABLE OCIRecipeBuild
    ADD COLUMN requester INTEGER REFERENCES Person (id);
ALTER TABLE OCIRecipeBuild
    ADD COLUMN processor INTEGER REFERENCES Processor (id);
ALTER TABLE OCIRecipeBuild
    ADD COLUMN distro_arch_series INTEGER REFERENCES DistroArchSeries (id);
ALTER TABLE OCIRecipeBuild
    ADD COLUMN build_farm_job INTEGER REFERENCES BuildFarmJob (id);
ALTER TABLE OCIRecipeBuild
    ADD COLUMN builder INTEGER REFERENCES Builder (id);
ALTER TABLE OCIRecipeBuild ADD COLUMN dependencies TEXT;

-- Builds recorded before this patch: each recipe owner becomes a
-- person who requested the recipe's builds, each architecture tag a
-- processor and an architecture of ubuntu/noble, and each build gets
-- its build farm job.
INSERT INTO Person (name, displayname)
    SELECT DISTINCT owner_name, owner_name FROM OCIRecipe
    WHERE id IN (SELECT recipe FROM OCIRecipeBuild);
INSERT INTO Processor (name, title)
    SELECT DISTINCT arch_tag, arch_tag FROM OCIRecipeBuild;
INSERT INTO Distribution (name, displayname)
    SELECT 'ubuntu', 'Ubuntu' WHERE EXISTS (SELECT 1 FROM OCIRecipeBuild);
-- ArchivePurpose.PRIMARY
INSERT INTO Archive (distribution, purpose, private)
    SELECT id, 1, FALSE FROM Distribution;
INSERT INTO DistroSeries (distribution, name)
    SELECT id, 'noble' FROM Distribution;
INSERT INTO DistroArchSeries (distroseries, processor, architecturetag)
    SELECT DistroSeries.id, Processor.id, Processor.name
    FROM DistroSeries, Processor;
UPDATE OCIRecipeBuild SET
    requester = (
        SELECT Person.id FROM Person, OCIRecipe
        WHERE OCIRecipe.id = OCIRecipeBuild.recipe
            AND Person.name = OCIRecipe.owner_name),
    processor = (
        SELECT Processor.id FROM Processor
        WHERE Processor.name = OCIRecipeBuild.arch_tag),
    distro_arch_series = (
        SELECT DistroArchSeries.id FROM DistroArchSeries
        WHERE DistroArchSeries.architecturetag = OCIRecipeBuild.arch_tag);
-- BuildFarmJobType.OCIRECIPEBUILD; the id is borrowed from the build
-- so that the two can be matched up, and the sequence moved past it.
INSERT INTO BuildFarmJob (
        id, job_type, status, date_created, date_finished,
        failure_count, archive)
    SELECT OCIRecipeBuild.id, 7, status, date_created, date_finished,
        failure_count, (SELECT id FROM Archive)
    FROM OCIRecipeBuild;
UPDATE OCIRecipeBuild SET build_farm_job = id;
SELECT setval('buildfarmjob_id_seq', (SELECT MAX(id) FROM BuildFarmJob));

ALTER TABLE OCIRecipeBuild DROP COLUMN arch_tag;
ALTER TABLE OCIRecipeBuild ALTER COLUMN requester SET NOT NULL;
ALTER TABLE OCIRecipeBuild ALTER COLUMN processor SET NOT NULL;
ALTER TABLE OCIRecipeBuild ALTER COLUMN build_farm_job SET NOT NULL;

CREATE UNIQUE INDEX ocirecipebuild__build_farm_job__key
    ON OCIRecipeBuild (build_farm_job);
CREATE INDEX ocirecipebuild__requester__idx ON OCIRecipeBuild (requester);
CREATE INDEX ocirecipebuild__builder__idx ON OCIRecipeBuild (builder);
