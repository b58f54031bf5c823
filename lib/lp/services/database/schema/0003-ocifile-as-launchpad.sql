-- Copyright 2026 Canonical Ltd.  This software is licensed under the
-- GNU Affero General Public License version 3 (see the file LICENSE).

SET client_min_messages=ERROR;

-- OCIFile and OCIRecipeBuildJob as Launchpad has them: layer digests in
-- character(80) (PostgreSQL pads the values with spaces), one file per
-- digest and build, an index for pruning files unused for a while, and
-- job data in jsonb.  (SQLite keeps its dynamically typed columns.)

ALTER TABLE OCIFile ALTER COLUMN layer_file_digest TYPE character(80);
CREATE UNIQUE INDEX ocifile__build__layer_file_digest__key
    ON OCIFile (build, layer_file_digest);
CREATE INDEX ocifile__date_last_used__idx ON OCIFile (date_last_used);

ALTER TABLE OCIRecipeBuildJob ALTER COLUMN json_data TYPE jsonb
    USING json_data::jsonb;

COMMENT ON COLUMN OCIFile.layer_file_digest IS 'The digest of the file''s content (for legacy pulled layers, the registry''s digest), as algorithm:hex.';
COMMENT ON COLUMN OCIFile.date_last_used IS 'When a build last used this file, so that files unused for a while can be pruned.';
