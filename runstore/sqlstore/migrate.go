package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jmoiron/sqlx"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migration is one embedded schema migration: either canonical SQL for
// every dialect (a file NNNN_name.sql) or one file per dialect
// (NNNN_name.postgres.sql and NNNN_name.sqlite.sql), for changes the
// dialects make differently, such as widening a CHECK constraint.
type Migration struct {
	Version int    // from the file name's numeric prefix, 1, 2, ...
	Name    string // the file name; for one written per dialect, without the dialect (0005_imports.sql)
	SQL     string // canonical SQL with {{JSON}}, {{ID}} and {{PK}} placeholders; "" when written per dialect
	// Dialects holds a migration written per dialect, nil for a canonical
	// one. Use For to get what a dialect runs either way.
	Dialects map[Dialect]MigrationSQL
}

// MigrationSQL is what one dialect runs for a migration.
type MigrationSQL struct {
	File string // the embedded file, recorded in schema_migrations
	SQL  string
	// ForeignKeysOff runs a SQLite migration with foreign key enforcement
	// off, as rebuilding a table other tables refer to requires
	// (https://www.sqlite.org/lang_altertable.html, section 7), and fails
	// it unless PRAGMA foreign_key_check passes before it commits. A file
	// asks for it with the line "-- sqlstore:foreign-keys-off".
	ForeignKeysOff bool
}

// For returns the SQL dialect d runs for m, placeholders expanded.
func (m Migration) For(d Dialect) (MigrationSQL, error) {
	if m.Dialects == nil {
		return MigrationSQL{File: m.Name, SQL: d.expand(m.SQL)}, nil
	}
	x, ok := m.Dialects[d]
	if !ok {
		return MigrationSQL{}, fmt.Errorf("sqlstore: migration %s has no %s file", m.Name, d)
	}
	x.SQL = d.expand(x.SQL)
	return x, nil
}

// directive is the prefix of a line that tells the migrator how to run a
// file.
const directive = "-- sqlstore:"

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("sqlstore: reading embedded migrations: %w", err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		b, err := migrationFS.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: migration %q: %w", e.Name(), err)
		}
		files[e.Name()] = b
	}
	return parseMigrations(files)
}

// parseMigrations groups migration files by version and checks them.
func parseMigrations(files map[string][]byte) ([]Migration, error) {
	byVersion := map[int]*Migration{}
	names := slices.Sorted(maps.Keys(files))
	for _, name := range names {
		stem, ok := strings.CutSuffix(name, ".sql")
		prefix, _, ok2 := strings.Cut(stem, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || !ok2 || err != nil || v < 1 {
			return nil, fmt.Errorf("sqlstore: migration %q: name must be a positive number, '_', a name and .sql", name)
		}
		var d Dialect
		for _, cand := range []Dialect{Postgres, SQLite} {
			if base, ok := strings.CutSuffix(stem, "."+string(cand)); ok {
				d, stem = cand, base
			}
		}
		if strings.Contains(stem, ".") {
			return nil, fmt.Errorf("sqlstore: migration %q: a dot in the name is only allowed before a dialect (.postgres.sql, .sqlite.sql)", name)
		}
		text := string(files[name])
		fkOff, err := directives(name, d, text)
		if err != nil {
			return nil, err
		}
		m := byVersion[v]
		if m == nil {
			m = &Migration{Version: v, Name: stem + ".sql"}
			byVersion[v] = m
		}
		switch {
		case m.Name != stem+".sql":
			return nil, fmt.Errorf("sqlstore: migration %q: version %d is also %s", name, v, m.Name)
		case d == "" && (m.SQL != "" || m.Dialects != nil), d != "" && m.SQL != "":
			return nil, fmt.Errorf("sqlstore: migration %q: version %d has both a canonical file and a file per dialect", name, v)
		case d == "":
			m.SQL = text
		default:
			if m.Dialects == nil {
				m.Dialects = map[Dialect]MigrationSQL{}
			}
			m.Dialects[d] = MigrationSQL{File: name, SQL: text, ForeignKeysOff: fkOff}
		}
	}
	ms := make([]Migration, 0, len(byVersion))
	for _, m := range byVersion {
		ms = append(ms, *m)
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("sqlstore: migration %q: version %d, want %d (versions must be 1, 2, 3, ...)", m.Name, m.Version, i+1)
		}
		if m.Dialects != nil {
			for _, d := range []Dialect{Postgres, SQLite} {
				if _, ok := m.Dialects[d]; !ok {
					return nil, fmt.Errorf("sqlstore: migration %q: written per dialect but has no %s file", m.Name, d)
				}
			}
		}
	}
	return ms, nil
}

// directives reads the "-- sqlstore:" lines of a migration file.
func directives(name string, d Dialect, text string) (fkOff bool, err error) {
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), directive)
		if !ok {
			continue
		}
		switch strings.TrimSpace(rest) {
		case "foreign-keys-off":
			if d != SQLite {
				return false, fmt.Errorf("sqlstore: migration %q: foreign-keys-off is for SQLite files (.sqlite.sql) only", name)
			}
			fkOff = true
		default:
			return false, fmt.Errorf("sqlstore: migration %q: unknown directive %q", name, strings.TrimSpace(line))
		}
	}
	return fkOff, nil
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
// PostgreSQL, the write lock on SQLite) and check the version inside the
// transaction, so each migration runs once.
func (s *Store) Migrate(ctx context.Context) ([]int, error) {
	return s.migrateTo(ctx, 0)
}

// migrateTo applies the pending migrations up to version target (every
// one for 0).
func (s *Store) migrateTo(ctx context.Context, target int) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	// What is applied already needs no write transaction (the check inside
	// applyMigration's transaction is what keeps concurrent migrators apart).
	done, err := s.appliedVersions(ctx)
	if err != nil {
		return nil, err
	}
	var applied []int
	for _, m := range ms {
		if target > 0 && m.Version > target {
			break
		}
		if done[m.Version] {
			continue
		}
		did, err := s.applyMigration(ctx, m)
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

// applyMigration applies m unless the database has it, and reports
// whether it did.
func (s *Store) applyMigration(ctx context.Context, m Migration) (bool, error) {
	step, err := m.For(s.dialect)
	if err != nil {
		return false, err
	}
	did := false
	body := func(tx *txn) error {
		did = false
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
		if _, err := tx.ExecContext(ctx, step.SQL); err != nil {
			return fmt.Errorf("applying %s: %w", step.File, err)
		}
		if step.ForeignKeysOff {
			if err := foreignKeyCheck(ctx, tx); err != nil {
				return fmt.Errorf("applying %s: %w", step.File, err)
			}
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO schema_migrations (version, name, applied_us) VALUES (?, ?, ?)`),
			m.Version, step.File, toMicros(stamp(s.clock))); err != nil {
			return err
		}
		did = true
		return nil
	}
	if step.ForeignKeysOff && s.dialect == SQLite {
		err = s.withoutForeignKeys(ctx, body)
	} else {
		err = s.tx(ctx, body)
	}
	return did, err
}

// withoutForeignKeys runs f in a write transaction on a SQLite connection
// whose foreign key enforcement is off. The pragma is a no-op inside a
// transaction, so it is set on a dedicated connection (the writer pool's
// only one) before BEGIN and set back on after COMMIT or ROLLBACK; a
// connection that cannot be set back is discarded rather than returned to
// the pool.
func (s *Store) withoutForeignKeys(ctx context.Context, f func(tx *txn) error) (err error) {
	conn, err := s.w.Connx(ctx)
	if err != nil {
		return unavailable(fmt.Errorf("sqlstore: connection: %w", err))
	}
	defer func() {
		if onErr := setForeignKeys(context.WithoutCancel(ctx), conn, true); onErr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // discards the connection
			err = errors.Join(err, onErr)
		}
		conn.Close()
	}()
	if err := setForeignKeys(ctx, conn, false); err != nil {
		return unavailable(err)
	}
	return s.txWith(ctx, func() (*txn, error) { return conn.BeginTxx(ctx, nil) }, f)
}

// setForeignKeys sets SQLite's foreign_keys pragma on conn and checks that
// it took (it does not inside a transaction).
func setForeignKeys(ctx context.Context, conn *sqlx.Conn, on bool) error {
	want := map[bool]int{false: 0, true: 1}[on]
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA foreign_keys = %d`, want)); err != nil {
		return fmt.Errorf("sqlstore: setting foreign_keys = %d: %w", want, err)
	}
	var got int
	if err := conn.GetContext(ctx, &got, `PRAGMA foreign_keys`); err != nil {
		return fmt.Errorf("sqlstore: reading foreign_keys: %w", err)
	}
	if got != want {
		return fmt.Errorf("sqlstore: foreign_keys is %d after setting it to %d", got, want)
	}
	return nil
}

// foreignKeyCheck fails if any row of a SQLite database violates a foreign
// key, naming the first few.
func foreignKeyCheck(ctx context.Context, tx *txn) error {
	rows, err := tx.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return fmt.Errorf("foreign_key_check: %w", err)
	}
	defer rows.Close()
	var bad []string
	n := 0
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fkid int64
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return fmt.Errorf("foreign_key_check: %w", err)
		}
		n++
		if len(bad) < 5 {
			bad = append(bad, fmt.Sprintf("%s row %d refers to a missing %s", table, rowid.Int64, parent))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("foreign_key_check: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("foreign_key_check: %d rows violate a foreign key (%s)", n, strings.Join(bad, "; "))
	}
	return nil
}

// appliedVersions returns the versions schema_migrations holds.
func (s *Store) appliedVersions(ctx context.Context) (map[int]bool, error) {
	exists, err := s.tableExists(ctx, "schema_migrations")
	if err != nil || !exists {
		return nil, err
	}
	var vs []int
	if err := s.r.SelectContext(ctx, &vs, `SELECT version FROM schema_migrations`); err != nil {
		return nil, unavailable(fmt.Errorf("sqlstore: applied migrations: %w", err))
	}
	done := make(map[int]bool, len(vs))
	for _, v := range vs {
		done[v] = true
	}
	return done, nil
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
