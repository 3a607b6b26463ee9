package sqlstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration is one embedded schema migration.
type Migration struct {
	Version int    // from the file name's numeric prefix, 1, 2, ...
	Name    string // the file name
	SQL     string // canonical SQL with {{JSON}} and {{PK}} placeholders
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: reading embedded migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("sqlstore: migration %q: name must start with a positive number and '_'", name)
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", name))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: migration %q: %w", name, err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("sqlstore: migration %q: version %d, want %d (versions must be 1, 2, 3, ...)", m.Name, m.Version, i+1)
		}
	}
	return ms, nil
}

// expand turns canonical SQL into the dialect's.
func (d Dialect) expand(sql string) string {
	r := strings.NewReplacer(
		"{{JSON}}", map[Dialect]string{Postgres: "JSONB", SQLite: "TEXT"}[d],
		"{{ID}}", map[Dialect]string{Postgres: `VARCHAR(32) COLLATE "C"`, SQLite: "VARCHAR(32)"}[d],
		"{{PK}}", map[Dialect]string{Postgres: "BIGSERIAL PRIMARY KEY", SQLite: "INTEGER PRIMARY KEY AUTOINCREMENT"}[d],
	)
	return r.Replace(sql)
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_us BIGINT NOT NULL
)`

// migrationLockID is the PostgreSQL advisory lock that serialises
// concurrent migrators.
const migrationLockID = 0x64796e6f // "dyno"

// Migrate applies every pending migration, each in its own transaction
// together with its row in schema_migrations, and returns the versions it
// applied. Concurrent migrators are serialised (an advisory lock on
// PostgreSQL, the write lock on SQLite), so each migration runs once.
func (s *Store) Migrate(ctx context.Context) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	var applied []int
	for _, m := range ms {
		did := false
		err := s.tx(ctx, func(tx *txn) error {
			if s.dialect == Postgres {
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockID); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, createMigrationsTable); err != nil {
				return err
			}
			var n int
			if err := tx.GetContext(ctx, &n, tx.Rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.Version); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, s.dialect.expand(m.SQL)); err != nil {
				return fmt.Errorf("applying %s: %w", m.Name, err)
			}
			if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO schema_migrations (version, name, applied_us) VALUES (?, ?, ?)`),
				m.Version, m.Name, toMicros(stamp(s.clock))); err != nil {
				return err
			}
			did = true
			return nil
		})
		if err != nil {
			return applied, fmt.Errorf("sqlstore: migration %d: %w", m.Version, err)
		}
		if did {
			s.log.Info("sqlstore: applied migration", "version", m.Version, "name", m.Name)
			applied = append(applied, m.Version)
		}
	}
	return applied, nil
}

// SchemaVersion returns the highest applied migration, 0 for an empty
// database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	exists, err := s.tableExists(ctx, "schema_migrations")
	if err != nil || !exists {
		return 0, err
	}
	var v int
	if err := s.r.GetContext(ctx, &v, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`); err != nil {
		return 0, fmt.Errorf("sqlstore: schema version: %w", err)
	}
	return v, nil
}

func (s *Store) tableExists(ctx context.Context, name string) (bool, error) {
	var q string
	switch s.dialect {
	case Postgres:
		q = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`
	default:
		q = `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	}
	var n int
	if err := s.r.GetContext(ctx, &n, q, name); err != nil {
		return false, fmt.Errorf("sqlstore: looking for table %s: %w", name, err)
	}
	return n > 0, nil
}
