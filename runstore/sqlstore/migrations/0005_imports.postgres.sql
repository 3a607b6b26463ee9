-- 0005 (PostgreSQL): imported runs (runstore.Importer).
--
-- Runs may come from source 'import': the CHECK of 0001 on runs.source is
-- replaced by one that admits it. PostgreSQL named 0001's constraint
-- runs_source_check, but the one dropped is whichever CHECK of runs covers
-- exactly the source column, so a database whose constraint got another
-- name (restored by hand, say) migrates too. Every existing row satisfies
-- the wider constraint, which ADD CONSTRAINT verifies.
DO $$
DECLARE
    c name;
BEGIN
    FOR c IN
        SELECT con.conname
        FROM pg_constraint con
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
        WHERE con.conrelid = 'runs'::regclass AND con.contype = 'c'
          AND cardinality(con.conkey) = 1 AND a.attname = 'source'
    LOOP
        EXECUTE format('ALTER TABLE runs DROP CONSTRAINT %I', c);
    END LOOP;
END
$$;
ALTER TABLE runs ADD CONSTRAINT runs_source_check
    CHECK (source IN ('upload', 'jetstream', 'jetdrive', 'simulator', 'api', 'import'));

-- One row per imported run: the tenant's key of the thing imported (the
-- other tool's run id and its input's hash). The primary key lets one
-- importer of a key win; the run's deletion frees the key.
CREATE TABLE run_imports (
    tenant     TEXT NOT NULL,
    import_key TEXT NOT NULL,
    run_id     {{ID}} NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    created_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, import_key)
);
CREATE INDEX ix_run_imports_run ON run_imports (run_id);
