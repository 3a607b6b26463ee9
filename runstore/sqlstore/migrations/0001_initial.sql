-- 0001: runs, their status history and their files.
-- {{JSON}} is JSONB on PostgreSQL and TEXT on SQLite; {{PK}} is an
-- auto-incrementing 64-bit primary key; {{ID}} is a run id compared
-- bytewise (COLLATE "C" on PostgreSQL, SQLite's default BINARY). Times are UTC microseconds since
-- the Unix epoch.
CREATE TABLE runs (
    id                 {{ID}} PRIMARY KEY,
    version            BIGINT NOT NULL CHECK (version >= 1),
    status             VARCHAR(20) NOT NULL
                       CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    source             VARCHAR(20) NOT NULL
                       CHECK (source IN ('upload', 'jetstream', 'jetdrive', 'simulator', 'api')),
    stage              TEXT NOT NULL DEFAULT '',
    progress           DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    message            TEXT NOT NULL DEFAULT '',
    filename           TEXT NOT NULL DEFAULT '',
    input_size         BIGINT NOT NULL DEFAULT 0,
    vehicle            TEXT NOT NULL DEFAULT '',
    jetstream_id       TEXT NOT NULL DEFAULT '',
    search             TEXT NOT NULL DEFAULT '',
    settings           {{JSON}},
    results            {{JSON}},
    error              {{JSON}},
    peak_hp            DOUBLE PRECISION,
    peak_torque        DOUBLE PRECISION,
    afr_mean           DOUBLE PRECISION,
    afr_std            DOUBLE PRECISION,
    corrected_cells    BIGINT,
    max_correction_pct DOUBLE PRECISION,
    created_us         BIGINT NOT NULL,
    updated_us         BIGINT NOT NULL,
    completed_us       BIGINT
);
CREATE INDEX ix_runs_created ON runs (created_us, id);
CREATE INDEX ix_runs_status_created ON runs (status, created_us, id);
CREATE INDEX ix_runs_source_created ON runs (source, created_us, id);
CREATE INDEX ix_runs_jetstream_id ON runs (jetstream_id);
CREATE INDEX ix_runs_peak_hp ON runs (peak_hp, created_us, id);

CREATE TABLE run_status_history (
    id          {{PK}},
    run_id      {{ID}} NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    from_status VARCHAR(20) NOT NULL DEFAULT '',
    to_status   VARCHAR(20) NOT NULL,
    at_us       BIGINT NOT NULL,
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ix_run_status_history_run ON run_status_history (run_id, id);

CREATE TABLE run_files (
    id           {{PK}},
    run_id       {{ID}} NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL DEFAULT '',
    size_bytes   BIGINT NOT NULL CHECK (size_bytes >= 0),
    sha256       CHAR(64) NOT NULL,
    storage_key  TEXT NOT NULL,
    created_us   BIGINT NOT NULL
);
CREATE INDEX ix_run_files_run ON run_files (run_id, id);
