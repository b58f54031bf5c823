-- Copyright 2026 Canonical Ltd.  This software is licensed under the
-- GNU Affero General Public License version 3 (see the file LICENSE).

SET client_min_messages=ERROR;

-- Pushing builds to registries: who may push where (credentials, their
-- secret part sealed with the configured public key), which recipe
-- pushes to which image (push rules), and where each blob was pushed so
-- that later pushes to the same registry can mount it from there.

CREATE TABLE OCIRegistryCredentials (
    id SERIAL PRIMARY KEY,
    owner INTEGER NOT NULL REFERENCES Person (id),
    url TEXT NOT NULL,
    credentials TEXT
);
CREATE INDEX ociregistrycredentials__owner__idx
    ON OCIRegistryCredentials (owner);
ALTER TABLE OCIRegistryCredentials ALTER COLUMN credentials TYPE jsonb
    USING credentials::jsonb;

CREATE TABLE OCIPushRule (
    id SERIAL PRIMARY KEY,
    recipe INTEGER NOT NULL REFERENCES OCIRecipe (id),
    registry_credentials INTEGER NOT NULL
        REFERENCES OCIRegistryCredentials (id),
    image_name TEXT NOT NULL,
    CONSTRAINT ocipushrule__recipe__registry_credentials__image_name__key
        UNIQUE (recipe, registry_credentials, image_name)
);
CREATE INDEX ocipushrule__registry_credentials__idx
    ON OCIPushRule (registry_credentials);

CREATE TABLE OCIPushedBlob (
    id SERIAL PRIMARY KEY,
    registry_url TEXT NOT NULL,
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    size BIGINT,
    date_pushed TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    CONSTRAINT ocipushedblob__registry_url__digest__repository__key
        UNIQUE (registry_url, digest, repository)
);

COMMENT ON TABLE OCIRegistryCredentials IS 'Credentials for pushing to an OCI registry.';
COMMENT ON COLUMN OCIRegistryCredentials.credentials IS 'The username in clear and the secret sealed with the configured public key; never the secret in clear.';
COMMENT ON TABLE OCIPushRule IS 'A rule for pushing the builds of an OCI recipe to a registry.';
COMMENT ON TABLE OCIPushedBlob IS 'Where a blob has been pushed, so that later pushes to the same registry can mount it rather than upload it.';
