-- 0003: the durable analysis queue. A run has at most one job, inserted in
-- the same transaction as the run and its input file (runstore.Submit).
-- Workers on any replica claim due jobs with a lease (lease_until_us); every
-- claim raises token, the fencing token each later write of the lease is
-- checked against, so a worker whose lease expired writes nothing
-- (late_writes counts the refused writes).
CREATE TABLE run_jobs (
    id             {{PK}},
    run_id         {{ID}} NOT NULL UNIQUE REFERENCES runs (id) ON DELETE CASCADE,
    kind           VARCHAR(32) NOT NULL,
    state          VARCHAR(16) NOT NULL
                   CHECK (state IN ('available', 'running', 'completed', 'failed', 'cancelled')),
    attempt        INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts   INTEGER NOT NULL CHECK (max_attempts >= 1),
    token          BIGINT NOT NULL DEFAULT 0,
    worker         TEXT NOT NULL DEFAULT '',
    lease_until_us BIGINT NOT NULL DEFAULT 0,
    run_at_us      BIGINT NOT NULL,
    input_file_id  BIGINT NOT NULL DEFAULT 0,
    last_error     TEXT NOT NULL DEFAULT '',
    late_writes    BIGINT NOT NULL DEFAULT 0,
    created_us     BIGINT NOT NULL,
    updated_us     BIGINT NOT NULL
);
-- Claim looks for due available jobs and expired running ones.
CREATE INDEX ix_run_jobs_due ON run_jobs (state, run_at_us, id);
CREATE INDEX ix_run_jobs_lease ON run_jobs (state, lease_until_us);

-- Uploads a server accepted before this migration and never finished get a
-- job, so the queue analyzes them instead of failing them: every queued or
-- processing upload whose log is stored.
INSERT INTO run_jobs (run_id, kind, state, attempt, max_attempts, token, run_at_us, input_file_id, created_us, updated_us)
SELECT r.id, 'analyze', 'available', 0, 3, 0, r.created_us,
       (SELECT MIN(f.id) FROM run_files f WHERE f.run_id = r.id), r.created_us, r.updated_us
FROM runs r
WHERE r.status IN ('queued', 'processing') AND r.source = 'upload'
  AND EXISTS (SELECT 1 FROM run_files f WHERE f.run_id = r.id);
