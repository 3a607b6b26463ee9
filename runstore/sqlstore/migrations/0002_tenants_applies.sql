-- 0002: run owners (tenants), atomic apply records, and the liveness probe.
--
-- Runs stored before this migration, and runs made without an API key,
-- have the empty tenant: they belong to the server's default tenant.
ALTER TABLE runs ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
CREATE INDEX ix_runs_tenant_created ON runs (tenant, created_us, id);

-- One row per apply or rollback of a run's cylinder. Its files are rows of
-- run_files inserted in the same transaction and linked in order through
-- run_apply_files. Records of a cylinder form a chain through parent_id (0
-- for the first); the unique index lets only one writer build on a state.
CREATE TABLE run_applies (
    id         {{PK}},
    run_id     {{ID}} NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    cylinder   TEXT NOT NULL,
    kind       VARCHAR(10) NOT NULL CHECK (kind IN ('apply', 'rollback')),
    parent_id  BIGINT NOT NULL DEFAULT 0 CHECK (parent_id >= 0),
    created_us BIGINT NOT NULL
);
CREATE UNIQUE INDEX ux_run_applies_chain ON run_applies (run_id, cylinder, parent_id);

CREATE TABLE run_apply_files (
    apply_id BIGINT NOT NULL REFERENCES run_applies (id) ON DELETE CASCADE,
    position INTEGER NOT NULL CHECK (position >= 0),
    file_id  BIGINT NOT NULL REFERENCES run_files (id) ON DELETE CASCADE,
    PRIMARY KEY (apply_id, position)
);
CREATE INDEX ix_run_apply_files_file ON run_apply_files (file_id);

-- Contents are shared by key (content addressing): finding whether a key is
-- still referred to must not scan the table.
CREATE INDEX ix_run_files_storage_key ON run_files (storage_key);

-- A store's probe writes its row and reads it back (one row per process).
CREATE TABLE store_probes (
    id    VARCHAR(64) PRIMARY KEY,
    nonce VARCHAR(64) NOT NULL,
    at_us BIGINT NOT NULL
);
