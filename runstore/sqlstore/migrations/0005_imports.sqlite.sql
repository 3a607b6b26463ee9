-- sqlstore:foreign-keys-off
-- 0005 (SQLite): imported runs (runstore.Importer).
--
-- Runs may come from source 'import'. SQLite cannot alter a CHECK, so runs
-- is rebuilt the documented way (https://www.sqlite.org/lang_altertable.html
-- section 7): with foreign keys off (the directive above; the migrator sets
-- it outside the transaction, runs PRAGMA foreign_key_check before COMMIT
-- and sets it back on), create runs_new with every column of runs (0001's,
-- then 0002's tenant, in that order), copy the rows, drop runs, rename
-- runs_new to runs and recreate runs' indexes (0001's and 0002's). With
-- foreign keys on, DROP TABLE runs would delete every history, file, apply
-- and job row through ON DELETE CASCADE. The child tables' REFERENCES runs
-- name the table, so they refer to the rebuilt one; nothing refers to
-- runs_new, so the rename rewrites nothing.
CREATE TABLE runs_new (
    id                 VARCHAR(32) PRIMARY KEY,
    version            BIGINT NOT NULL CHECK (version >= 1),
    status             VARCHAR(20) NOT NULL
                       CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    source             VARCHAR(20) NOT NULL
                       CHECK (source IN ('upload', 'jetstream', 'jetdrive', 'simulator', 'api', 'import')),
    stage              TEXT NOT NULL DEFAULT '',
    progress           DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    message            TEXT NOT NULL DEFAULT '',
    filename           TEXT NOT NULL DEFAULT '',
    input_size         BIGINT NOT NULL DEFAULT 0,
    vehicle            TEXT NOT NULL DEFAULT '',
    jetstream_id       TEXT NOT NULL DEFAULT '',
    search             TEXT NOT NULL DEFAULT '',
    settings           TEXT,
    results            TEXT,
    error              TEXT,
    peak_hp            DOUBLE PRECISION,
    peak_torque        DOUBLE PRECISION,
    afr_mean           DOUBLE PRECISION,
    afr_std            DOUBLE PRECISION,
    corrected_cells    BIGINT,
    max_correction_pct DOUBLE PRECISION,
    created_us         BIGINT NOT NULL,
    updated_us         BIGINT NOT NULL,
    completed_us       BIGINT,
    tenant             TEXT NOT NULL DEFAULT ''
);
INSERT INTO runs_new (id, version, status, source, stage, progress, message, filename, input_size, vehicle,
    jetstream_id, search, settings, results, error, peak_hp, peak_torque, afr_mean, afr_std, corrected_cells,
    max_correction_pct, created_us, updated_us, completed_us, tenant)
SELECT id, version, status, source, stage, progress, message, filename, input_size, vehicle,
    jetstream_id, search, settings, results, error, peak_hp, peak_torque, afr_mean, afr_std, corrected_cells,
    max_correction_pct, created_us, updated_us, completed_us, tenant
FROM runs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;
CREATE INDEX ix_runs_created ON runs (created_us, id);
CREATE INDEX ix_runs_status_created ON runs (status, created_us, id);
CREATE INDEX ix_runs_source_created ON runs (source, created_us, id);
CREATE INDEX ix_runs_jetstream_id ON runs (jetstream_id);
CREATE INDEX ix_runs_peak_hp ON runs (peak_hp, created_us, id);
CREATE INDEX ix_runs_tenant_created ON runs (tenant, created_us, id);

-- One row per imported run: the tenant's key of the thing imported (the
-- other tool's run id and its input's hash). The primary key lets one
-- importer of a key win; the run's deletion frees the key.
CREATE TABLE run_imports (
    tenant     TEXT NOT NULL,
    import_key TEXT NOT NULL,
    run_id     VARCHAR(32) NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    created_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, import_key)
);
CREATE INDEX ix_run_imports_run ON run_imports (run_id);
