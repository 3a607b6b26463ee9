// Package sqlstore is the runstore.RunStore on SQLite (the embedded default)
// or PostgreSQL, through sqlx. It is a package of its own so that the
// runstore package (types, interface, in-memory fake, conformance suite) and
// everything that only needs the interface build without cgo; this package
// needs cgo for github.com/mattn/go-sqlite3.
//
//   - OpenSQLite: one file, WAL journal, foreign keys, a busy timeout and a
//     single writer connection, so "database is locked" never reaches a caller.
//   - OpenPostgres: a lib/pq pool.
//   - Open: either, from a URL with a scheme (sqlite: or postgres://); see
//     ParseURL.
//
// Both dialects share one canonical schema, shipped as embedded, versioned
// migrations that Open applies inside transactions and records in the
// schema_migrations table. A migration is canonical SQL for both
// (NNNN_name.sql) or, where the dialects differ, one file per dialect
// (NNNN_name.postgres.sql and NNNN_name.sqlite.sql): migration 5 widens the
// CHECK on runs.source, which PostgreSQL alters in place and SQLite can only
// rebuild, with foreign keys off ("-- sqlstore:foreign-keys-off") and
// foreign_key_check before the commit. Store also implements
// runstore.Importer (run_imports holds each tenant's import keys). Timestamps are stored as integer microseconds since
// the Unix epoch in UTC (BIGINT on both engines), so ordering, keyset
// pagination and round trips are exact and independent of driver time-zone
// handling; they come from an injectable clock (Options.Now). Settings and
// results are JSON documents (JSONB on PostgreSQL, TEXT on SQLite); the
// numbers a user filters on (peak power and torque, AFR and correction
// statistics) are ordinary columns.
//
// A DSN never appears in an error or log with its password (see RedactDSN).
// Store passes the runstoretest conformance suite on both engines.
package sqlstore
