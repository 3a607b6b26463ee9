package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/dynoai/dynoai/runstore"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/mattn/go-sqlite3"
)

// Dialect names a SQL engine.
type Dialect string

// The supported engines.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is the RunStore on SQLite or PostgreSQL.
type Store struct {
	dialect  Dialect
	w        *sqlx.DB // writes; SQLite: a single connection
	r        *sqlx.DB // reads; PostgreSQL: the same pool as w
	clock    func() time.Time
	log      *slog.Logger
	ids      runstore.IDGenerator
	redacted string
	fail     runstore.Failpoint
	// SQLite: the database file as opened; every write transaction and
	// Probe check that the path still names it (not deleted or replaced).
	path  string
	ident os.FileInfo
	// probeID names this store's row in store_probes.
	probeID string
}

var _ runstore.RunStore = (*Store)(nil)

type txn = sqlx.Tx

// Open opens a SQL store named by a URL with a scheme (see ParseURL).
// Pending migrations are applied unless opts.SkipMigrate.
func Open(ctx context.Context, dbURL string, opts Options) (*Store, error) {
	d, target, err := ParseURL(dbURL)
	if err != nil {
		return nil, err
	}
	if d == Postgres {
		return OpenPostgres(ctx, target, opts)
	}
	return OpenSQLite(ctx, target, opts)
}

// ParseURL tells which engine a database URL names and returns what that
// engine's opener takes (a lib/pq DSN or a SQLite file path). The scheme is
// required:
//
//	sqlite:path             a path relative to the working directory
//	sqlite:///path          the same (three slashes, as SQLAlchemy writes it)
//	sqlite:////abs/path     an absolute path
//	postgres://user:password@host:port/db?sslmode=...   (or postgresql://;
//	                        a Unix socket directory goes in ?host=/run/postgresql)
//
// Anything else is an *runstore.InvalidError, never a guess: a typo such as
// "postgres//user:secret@host/db" must not become a SQLite file of that name,
// nor "::::not a url" a database in the working directory. Errors show the
// URL only through RedactDSN.
func ParseURL(dbURL string) (Dialect, string, error) {
	u := strings.TrimSpace(dbURL)
	if u == "" {
		return "", "", invalid("database url", "empty")
	}
	scheme, rest, ok := strings.Cut(u, ":")
	if !ok || !validScheme(scheme) {
		return "", "", invalid("database url", "%s has no scheme: write sqlite:<path> (sqlite:////absolute/path) or postgres://user:password@host:5432/db",
			RedactDSN(u))
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		pu, err := url.Parse(u)
		switch {
		case strings.Contains(u, "#"):
			return "", "", invalid("database url", "%s has a '#' (percent-encode it as %%23 in a password)", RedactDSN(u))
		case err != nil || !strings.HasPrefix(rest, "//"):
			// url.Parse's message quotes the URL, password included.
			return "", "", invalid("database url", "%s is not a postgres://user:password@host:port/db URL", RedactDSN(u))
		case pu.Host == "" && pu.Query().Get("host") == "":
			return "", "", invalid("database url", "%s names no host (for a Unix socket add ?host=/run/postgresql)", RedactDSN(u))
		}
		if p := pu.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return "", "", invalid("database url", "%s: port %q is not 1..65535", RedactDSN(u), p)
			}
		}
		return Postgres, u, nil
	case "sqlite":
		path := rest
		switch {
		case strings.HasPrefix(path, "///"):
			path = path[3:]
		case strings.HasPrefix(path, "//"):
			return "", "", invalid("database url", "%s: sqlite URLs have no host (sqlite:///relative or sqlite:////absolute)", RedactDSN(u))
		}
		if path == "" {
			return "", "", invalid("database url", "%s names no file", RedactDSN(u))
		}
		return SQLite, path, nil
	}
	return "", "", invalid("database url", "unsupported scheme %q in %s (want sqlite: or postgres://)", strings.ToLower(scheme), RedactDSN(u))
}

// validScheme reports whether s is a URL scheme (RFC 3986): a letter, then
// letters, digits, '+', '-' or '.'.
func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// OpenSQLite opens (creating if needed) the SQLite database file at path in
// WAL mode with foreign keys, a busy timeout and one writer connection; reads
// use a separate small pool, which WAL lets run beside the writer.
func OpenSQLite(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, invalid("sqlite path", "%q: want a file path (use NewMemory for an in-memory store)", path)
	}
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		return nil, invalid("sqlite path", "%q: character %q at byte %d is not supported in a path", path, path[i], i)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 10 * time.Second
	}
	syncMode := strings.ToUpper(opts.SQLiteSynchronous)
	switch syncMode {
	case "":
		syncMode = "FULL"
	case "FULL", "NORMAL", "EXTRA":
	default:
		return nil, invalid("sqlite synchronous", "%q: want FULL, NORMAL or EXTRA", opts.SQLiteSynchronous)
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", fmt.Sprint(busy.Milliseconds()))
	q.Set("_synchronous", syncMode)
	wq := url.Values{}
	for k, v := range q {
		wq[k] = v
	}
	wq.Set("_txlock", "immediate")
	w, err := sqlx.Open("sqlite3", path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlstore: opening sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1) // the single writer
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: opening sqlite %s: %w", path, err)
	}
	q.Set("_query_only", "true")
	r, err := sqlx.Open("sqlite3", path+"?"+q.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: opening sqlite %s: %w", path, err)
	}
	n := opts.MaxOpenConns
	if n <= 0 {
		n = 4
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	ident, err := os.Stat(path)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlstore: opening sqlite %s: %w", path, err)
	}
	s := &Store{dialect: SQLite, w: w, r: r, clock: opts.clock(), log: opts.logger(), redacted: path,
		path: path, ident: ident}
	return s.init(ctx, opts)
}

// OpenPostgres opens a PostgreSQL store through a lib/pq pool (at most
// opts.MaxOpenConns connections, default 15; 5 idle; recycled after 30
// minutes). Errors and logs show the DSN with its password redacted.
func OpenPostgres(ctx context.Context, dsn string, opts Options) (*Store, error) {
	red := RedactDSN(dsn)
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return nil, scrub(fmt.Errorf("sqlstore: opening postgres %s: %w", red, err), dsn)
	}
	n := opts.MaxOpenConns
	if n <= 0 {
		n = 15
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(min(5, n))
	db.SetConnMaxLifetime(30 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, scrub(fmt.Errorf("sqlstore: connecting to postgres %s: %w", red, err), dsn)
	}
	s := &Store{dialect: Postgres, w: db, r: db, clock: opts.clock(), log: opts.logger(), redacted: red}
	return s.init(ctx, opts)
}

func (s *Store) init(ctx context.Context, opts Options) (*Store, error) {
	s.fail = opts.Failpoint
	if s.fail == nil {
		s.fail = func(string) {}
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	s.probeID = hex.EncodeToString(id[:])
	s.log.Info("sqlstore: opened", "dialect", s.dialect, "dsn", s.redacted)
	if !opts.SkipMigrate {
		if _, err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// RedactDSN returns dsn with any password replaced by "xxxxx": the userinfo
// password of a URL, a password query parameter, or a password=... pair of
// a key=value DSN.
func RedactDSN(dsn string) string {
	// A URL whose '@' did not end up in its userinfo (say an unescaped '#' in
	// the password turned the rest into a fragment) is treated as malformed.
	if u, err := url.Parse(dsn); err == nil && (u.Scheme != "" || u.User != nil) && u.Opaque == "" && u.Fragment == "" &&
		(u.User != nil || !strings.Contains(dsn, "@")) {
		qv := u.Query()
		changed := false
		for k := range qv {
			if strings.Contains(asciiLower(k), "password") {
				qv[k] = []string{"xxxxx"}
				changed = true
			}
		}
		if changed {
			u.RawQuery = qv.Encode()
		}
		out := u.Redacted()
		// A password=... outside the query (in the path, say) goes too.
		if i := strings.IndexByte(out, '?'); i >= 0 {
			return redactSpans(out[:i]) + out[i:]
		}
		return redactSpans(out)
	}
	// key=value form (or an unparsable URL): redact every password=value.
	// Over-redacting an odd DSN is fine; leaking is not.
	out := redactSpans(dsn)
	if scheme, after, ok := strings.Cut(out, "://"); ok {
		// An unparsable URL: drop any userinfo entirely.
		if j := strings.LastIndex(after, "@"); j >= 0 {
			return scheme + "://xxxxx@" + after[j+1:]
		}
	}
	if j := strings.LastIndex(out, "@"); j >= 0 {
		// Something like a URL with a typo in its scheme
		// ("postgres//user:secret@host/db"): whatever precedes the '@' may
		// be a password.
		return "xxxxx@" + out[j+1:]
	}
	return out
}

// redactSpans replaces the value of every password= in s, a value running
// to the next white space or, quoted, to its closing quote.
func redactSpans(s string) string {
	var b strings.Builder
	rest := s
	for {
		start, end, ok := passwordSpan(rest)
		if !ok {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:start])
		b.WriteString("xxxxx")
		rest = rest[end:]
	}
	return b.String()
}

// asciiLower lower-cases ASCII letters only, so byte offsets stay valid
// (strings.ToLower can change the length of non-ASCII text).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// passwordSpan finds the value of the first password= key in s (case
// insensitive) and returns its byte range.
func passwordSpan(s string) (start, end int, ok bool) {
	i := strings.Index(asciiLower(s), "password=")
	if i < 0 {
		return 0, 0, false
	}
	start = i + len("password=")
	if strings.HasPrefix(s[start:], "'") {
		for k := start + 1; k < len(s); k++ {
			switch s[k] {
			case '\\':
				k++
			case '\'':
				return start, k + 1, true
			}
		}
		return start, len(s), true
	}
	end = strings.IndexFunc(s[start:], unicode.IsSpace)
	if end < 0 {
		return start, len(s), true
	}
	return start, start + end, true
}

// scrub removes the DSN's password from an error message, in case a driver
// or url.Parse quoted the DSN.
func scrub(err error, dsn string) error {
	pw := dsnPassword(dsn)
	if pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}

func dsnPassword(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			return p
		}
	}
	if start, end, ok := passwordSpan(dsn); ok {
		return strings.Trim(dsn[start:end], "'")
	}
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			if _, p, ok := strings.Cut(dsn[i+3:at], ":"); ok {
				return p
			}
		}
	}
	return ""
}

// Dialect returns the store's engine.
func (s *Store) Dialect() Dialect { return s.dialect }

// DSN returns the store's DSN with the password redacted (a path for
// SQLite).
func (s *Store) DSN() string { return s.redacted }

// Close implements RunStore.
func (s *Store) Close() error {
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// Ping implements RunStore.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping %s: %w", s.redacted, err)
	}
	return nil
}

// The failpoints of a write transaction, in order.
const (
	FailpointBeforeCommit = "sql.before_commit" // the transaction's writes are done, COMMIT not yet sent
	FailpointAfterCommit  = "sql.after_commit"  // COMMIT returned; the caller has not been told
)

// checkFile fails with runstore.ErrUnavailable when a SQLite store's path
// no longer names the database file it opened: a write would go to a file
// nobody will find again (deleted) or to one another process replaced.
func (s *Store) checkFile() error {
	if s.dialect != SQLite {
		return nil
	}
	st, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("%w: sqlite database %s: %v", runstore.ErrUnavailable, s.path, err)
	}
	if !os.SameFile(st, s.ident) {
		return fmt.Errorf("%w: sqlite database %s was replaced by another file", runstore.ErrUnavailable, s.path)
	}
	return nil
}

// tx runs f in a write transaction (BEGIN IMMEDIATE on SQLite), committing
// if f returns nil. A SQLite store refuses to commit into a database file
// that was deleted or replaced under it.
func (s *Store) tx(ctx context.Context, f func(tx *txn) error) error {
	return s.txWith(ctx, func() (*txn, error) { return s.w.BeginTxx(ctx, nil) }, f)
}

// txWith is tx on the transaction begin starts.
func (s *Store) txWith(ctx context.Context, begin func() (*txn, error), f func(tx *txn) error) error {
	if err := s.checkFile(); err != nil {
		return err
	}
	tx, err := begin()
	if err != nil {
		return unavailable(fmt.Errorf("sqlstore: begin: %w", err))
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return unavailable(err)
	}
	if err := s.checkFile(); err != nil {
		tx.Rollback()
		return err
	}
	s.fail(FailpointBeforeCommit)
	if err := tx.Commit(); err != nil {
		return unavailable(fmt.Errorf("sqlstore: commit: %w", err))
	}
	s.fail(FailpointAfterCommit)
	return nil
}

// unavailable marks err as runstore.ErrUnavailable (keeping it in the
// chain) when it says the database cannot take writes now rather than that
// the write was wrong: SQLite busy, locked, read-only, full, I/O or
// permission errors; PostgreSQL connection failures, a read-only
// transaction, too many connections, a server starting or shutting down, a
// full disk.
func unavailable(err error) error {
	if err == nil || errors.Is(err, runstore.ErrUnavailable) {
		return err
	}
	down := errors.Is(err, driver.ErrBadConn)
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrReadonly, sqlite3.ErrIoErr, sqlite3.ErrFull,
			sqlite3.ErrCantOpen, sqlite3.ErrPerm, sqlite3.ErrCorrupt, sqlite3.ErrNotADB:
			down = true
		}
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		code := string(pe.Code)
		switch {
		case strings.HasPrefix(code, "08"), // connection exception
			strings.HasPrefix(code, "53"), // insufficient resources (disk full, too many connections)
			strings.HasPrefix(code, "57"), // operator intervention (shutdown, cannot connect now)
			code == "25006":               // read_only_sql_transaction
			down = true
		}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		down = true
	}
	if !down {
		return err
	}
	return fmt.Errorf("%w: %w", runstore.ErrUnavailable, err)
}

// Probe implements runstore.RunStore: it writes this store's row of
// store_probes with a fresh nonce in a committed (durable) transaction,
// reads it back through the read pool, and, on SQLite, checks the database
// file is still the one opened.
func (s *Store) Probe(ctx context.Context) error {
	var b [16]byte
	_, _ = rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	now := toMicros(stamp(s.clock))
	err := s.tx(ctx, func(tx *txn) error {
		q := `INSERT INTO store_probes (id, nonce, at_us) VALUES (?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET nonce = excluded.nonce, at_us = excluded.at_us`
		if _, err := tx.ExecContext(ctx, tx.Rebind(q), s.probeID, nonce, now); err != nil {
			return err
		}
		// Rows of processes long gone.
		_, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM store_probes WHERE at_us < ?`), now-int64(24*time.Hour/time.Microsecond))
		return err
	})
	if err != nil {
		if errors.Is(err, runstore.ErrUnavailable) || ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("%w: probe write to %s: %v", runstore.ErrUnavailable, s.redacted, err)
	}
	var got string
	if err := s.r.GetContext(ctx, &got, s.r.Rebind(`SELECT nonce FROM store_probes WHERE id = ?`), s.probeID); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("%w: probe read from %s: %v", runstore.ErrUnavailable, s.redacted, err)
	}
	if got != nonce {
		return fmt.Errorf("%w: probe read from %s returned another value than written", runstore.ErrUnavailable, s.redacted)
	}
	return s.checkFile()
}

const runColumns = `id, tenant, version, status, source, stage, progress, message, filename, input_size, vehicle,
	jetstream_id, settings, results, error, peak_hp, peak_torque, afr_mean, afr_std, corrected_cells,
	max_correction_pct, created_us, updated_us, completed_us`

type runRow struct {
	ID               string          `db:"id"`
	Tenant           string          `db:"tenant"`
	Version          int64           `db:"version"`
	Status           string          `db:"status"`
	Source           string          `db:"source"`
	Stage            string          `db:"stage"`
	Progress         float64         `db:"progress"`
	Message          string          `db:"message"`
	Filename         string          `db:"filename"`
	InputSize        int64           `db:"input_size"`
	Vehicle          string          `db:"vehicle"`
	JetstreamID      string          `db:"jetstream_id"`
	Settings         sql.NullString  `db:"settings"`
	Results          sql.NullString  `db:"results"`
	Error            sql.NullString  `db:"error"`
	PeakHP           sql.NullFloat64 `db:"peak_hp"`
	PeakTorque       sql.NullFloat64 `db:"peak_torque"`
	AFRMean          sql.NullFloat64 `db:"afr_mean"`
	AFRStd           sql.NullFloat64 `db:"afr_std"`
	CorrectedCells   sql.NullInt64   `db:"corrected_cells"`
	MaxCorrectionPct sql.NullFloat64 `db:"max_correction_pct"`
	CreatedUS        int64           `db:"created_us"`
	UpdatedUS        int64           `db:"updated_us"`
	CompletedUS      sql.NullInt64   `db:"completed_us"`
}

func nf(v sql.NullFloat64) *float64 {
	if !v.Valid {
		return nil
	}
	return &v.Float64
}

func fn(p *float64) sql.NullFloat64 {
	if p == nil {
		return sql.NullFloat64{}
	}
	return sql.NullFloat64{Float64: *p, Valid: true}
}

func js(raw json.RawMessage) sql.NullString {
	if raw == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: string(raw), Valid: true}
}

func (row *runRow) run() (runstore.Run, error) {
	r := runstore.Run{
		ID: row.ID, Tenant: row.Tenant, Version: row.Version, Status: runstore.Status(row.Status), Source: runstore.RunSource(row.Source),
		Stage: row.Stage, Progress: row.Progress, Message: row.Message, Filename: row.Filename,
		InputSize: row.InputSize, Vehicle: row.Vehicle, JetstreamID: row.JetstreamID,
		Stats: runstore.Stats{PeakHP: nf(row.PeakHP), PeakTorque: nf(row.PeakTorque), AFRMean: nf(row.AFRMean),
			AFRStd: nf(row.AFRStd), MaxCorrectionPct: nf(row.MaxCorrectionPct)},
		CreatedAt: fromMicros(row.CreatedUS), UpdatedAt: fromMicros(row.UpdatedUS),
	}
	if row.Settings.Valid {
		r.Settings = json.RawMessage(row.Settings.String)
	}
	if row.Results.Valid {
		r.Results = json.RawMessage(row.Results.String)
	}
	if row.Error.Valid {
		var e runstore.RunError
		if err := json.Unmarshal([]byte(row.Error.String), &e); err != nil {
			return runstore.Run{}, fmt.Errorf("sqlstore: run %s: stored error is not valid: %w", row.ID, err)
		}
		r.Error = &e
	}
	if row.CorrectedCells.Valid {
		v := row.CorrectedCells.Int64
		r.Stats.CorrectedCells = &v
	}
	if row.CompletedUS.Valid {
		r.CompletedAt = fromMicros(row.CompletedUS.Int64)
	}
	return r, nil
}

func errJSON(e *runstore.RunError) sql.NullString {
	if e == nil {
		return sql.NullString{}
	}
	b, _ := json.Marshal(e) // a struct of strings always marshals
	return sql.NullString{String: string(b), Valid: true}
}

func completed(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: toMicros(t), Valid: true}
}

func nullInt(p *int64) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *p, Valid: true}
}

func (s *Store) insertHistory(ctx context.Context, tx *txn, runID string, ch runstore.StatusChange) error {
	_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO run_status_history (run_id, from_status, to_status, at_us, reason) VALUES (?, ?, ?, ?, ?)`),
		runID, string(ch.From), string(ch.To), toMicros(ch.At), ch.Reason)
	return err
}

// Create implements RunStore.
func (s *Store) Create(ctx context.Context, n runstore.NewRun) (runstore.Run, error) {
	if err := n.Validate(); err != nil {
		return runstore.Run{}, err
	}
	now := stamp(s.clock)
	id, err := s.ids.Next(now)
	if err != nil {
		return runstore.Run{}, err
	}
	r := n.Build(id, now)
	err = s.tx(ctx, func(tx *txn) error { return s.insertRun(ctx, tx, r) })
	if err != nil {
		return runstore.Run{}, fmt.Errorf("sqlstore: create: %w", err)
	}
	return r, nil
}

// insertRun inserts a new run (see NewRun.Build) and its creation entry in
// the history.
func (s *Store) insertRun(ctx context.Context, tx *txn, r runstore.Run) error {
	_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO runs (id, tenant, version, status, source, filename, input_size, vehicle, jetstream_id, search, settings, created_us, updated_us)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.ID, r.Tenant, r.Version, string(r.Status), string(r.Source), r.Filename, r.InputSize, r.Vehicle, r.JetstreamID,
		runstore.SearchText(r.Filename, r.Vehicle), js(r.Settings), toMicros(r.CreatedAt), toMicros(r.UpdatedAt))
	if err != nil {
		return err
	}
	return s.insertHistory(ctx, tx, r.ID, runstore.StatusChange{To: runstore.StatusQueued, At: r.CreatedAt, Reason: "created"})
}

type querier interface {
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
	Rebind(string) string
}

func (s *Store) get(ctx context.Context, q querier, id string) (runstore.Run, error) {
	var row runRow
	err := q.GetContext(ctx, &row, q.Rebind(`SELECT `+runColumns+` FROM runs WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return runstore.Run{}, notFound("run", id)
	}
	if err != nil {
		return runstore.Run{}, fmt.Errorf("sqlstore: get run %s: %w", id, err)
	}
	return row.run()
}

// Get implements RunStore.
func (s *Store) Get(ctx context.Context, id string) (runstore.Run, error) {
	if err := runstore.CheckID("id", id); err != nil {
		return runstore.Run{}, err
	}
	return s.get(ctx, s.r, id)
}

// List implements RunStore.
func (s *Store) List(ctx context.Context, f runstore.Filter) (runstore.Page, error) {
	q, err := f.Compile()
	if err != nil {
		return runstore.Page{}, err
	}
	var where []string
	var args []any
	in := func(col string, vals []string) {
		where = append(where, col+" IN (?"+strings.Repeat(", ?", len(vals)-1)+")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	if len(q.Tenants) > 0 {
		in("tenant", q.Tenants)
	}
	if len(q.Statuses) > 0 {
		vals := make([]string, len(q.Statuses))
		for i, v := range q.Statuses {
			vals[i] = string(v)
		}
		in("status", vals)
	}
	if len(q.Sources) > 0 {
		vals := make([]string, len(q.Sources))
		for i, v := range q.Sources {
			vals[i] = string(v)
		}
		in("source", vals)
	}
	if !q.CreatedAfter.IsZero() {
		where = append(where, "created_us >= ?")
		args = append(args, toMicros(q.CreatedAfter))
	}
	if !q.CreatedBefore.IsZero() {
		where = append(where, "created_us < ?")
		args = append(args, toMicros(q.CreatedBefore))
	}
	if q.TextLower != "" {
		where = append(where, `search LIKE ? ESCAPE '\'`)
		args = append(args, "%"+escapeLike(q.TextLower)+"%")
	}
	if q.JetstreamID != "" {
		where = append(where, "jetstream_id = ?")
		args = append(args, q.JetstreamID)
	}
	if q.MinPeakHP != nil {
		where = append(where, "peak_hp >= ?")
		args = append(args, *q.MinPeakHP)
	}
	order := "created_us DESC, id DESC"
	if q.Sort == runstore.SortPeakHP {
		where = append(where, "peak_hp IS NOT NULL")
		order = "peak_hp DESC, " + order
	}
	if q.HasAfter {
		// A row-value comparison lets both engines seek the index.
		if q.Sort == runstore.SortPeakHP {
			where = append(where, "(peak_hp, created_us, id) < (?, ?, ?)")
			args = append(args, q.After.Peak, q.After.Micros, q.After.ID)
		} else {
			where = append(where, "(created_us, id) < (?, ?)")
			args = append(args, q.After.Micros, q.After.ID)
		}
	}
	stmt := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	stmt += fmt.Sprintf(" ORDER BY %s LIMIT %d", order, q.N+1)
	var rows []runRow
	if err := s.r.SelectContext(ctx, &rows, s.r.Rebind(stmt), args...); err != nil {
		return runstore.Page{}, fmt.Errorf("sqlstore: list: %w", err)
	}
	var p runstore.Page
	more := len(rows) > q.N
	if more {
		rows = rows[:q.N]
	}
	p.Runs = make([]runstore.Run, 0, len(rows))
	for i := range rows {
		r, err := rows[i].run()
		if err != nil {
			return runstore.Page{}, err
		}
		p.Runs = append(p.Runs, r)
	}
	if more {
		p.Next = q.Next(p.Runs[len(p.Runs)-1])
	}
	return p, nil
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func (s *Store) mutateTx(ctx context.Context, tx *txn, id string, m runstore.Mutation, now time.Time) (runstore.Run, error) {
	cur, err := s.get(ctx, tx, id)
	if err != nil {
		return runstore.Run{}, err
	}
	r, ch, err := runstore.ApplyMutation(cur, m, now)
	if err != nil {
		return runstore.Run{}, err
	}
	res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE runs SET version = ?, status = ?, stage = ?, progress = ?, message = ?,
		settings = ?, results = ?, error = ?, peak_hp = ?, peak_torque = ?, afr_mean = ?, afr_std = ?, corrected_cells = ?,
		max_correction_pct = ?, updated_us = ?, completed_us = ? WHERE id = ? AND version = ?`),
		r.Version, string(r.Status), r.Stage, r.Progress, r.Message, js(r.Settings), js(r.Results), errJSON(r.Error),
		fn(r.Stats.PeakHP), fn(r.Stats.PeakTorque), fn(r.Stats.AFRMean), fn(r.Stats.AFRStd),
		nullInt(r.Stats.CorrectedCells), fn(r.Stats.MaxCorrectionPct), toMicros(r.UpdatedAt),
		completed(r.CompletedAt), id, cur.Version)
	if err != nil {
		return runstore.Run{}, fmt.Errorf("sqlstore: update run %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return runstore.Run{}, fmt.Errorf("sqlstore: update run %s: %w", id, err)
	} else if n == 0 {
		return runstore.Run{}, conflict("run %s changed concurrently", id)
	}
	if ch != nil {
		if err := s.insertHistory(ctx, tx, id, *ch); err != nil {
			return runstore.Run{}, fmt.Errorf("sqlstore: update run %s: history: %w", id, err)
		}
	}
	return r, nil
}

func (s *Store) mutate(ctx context.Context, id string, m runstore.Mutation) (runstore.Run, error) {
	if err := runstore.CheckID("id", id); err != nil {
		return runstore.Run{}, err
	}
	now := stamp(s.clock)
	var out runstore.Run
	err := s.tx(ctx, func(tx *txn) error {
		var err error
		out, err = s.mutateTx(ctx, tx, id, m, now)
		return err
	})
	return out, err
}

// Update implements RunStore.
func (s *Store) Update(ctx context.Context, id string, u runstore.Update) (runstore.Run, error) {
	if err := u.Validate(); err != nil {
		return runstore.Run{}, err
	}
	return s.mutate(ctx, id, u.Mutation())
}

// Complete implements RunStore.
func (s *Store) Complete(ctx context.Context, id string, version int64, r runstore.Result) (runstore.Run, error) {
	if err := runstore.CheckVersion(version); err != nil {
		return runstore.Run{}, err
	}
	if err := r.Validate(); err != nil {
		return runstore.Run{}, err
	}
	return s.mutate(ctx, id, runstore.CompleteMutation(version, r))
}

// Fail implements RunStore.
func (s *Store) Fail(ctx context.Context, id string, version int64, e runstore.RunError) (runstore.Run, error) {
	if err := runstore.CheckVersion(version); err != nil {
		return runstore.Run{}, err
	}
	if err := e.Validate(); err != nil {
		return runstore.Run{}, err
	}
	return s.mutate(ctx, id, runstore.FailMutation(version, e))
}

// Recover implements RunStore.
func (s *Store) Recover(ctx context.Context, e runstore.RunError) ([]string, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	now := stamp(s.clock)
	var ids []string
	err := s.tx(ctx, func(tx *txn) error {
		ids = nil
		if err := tx.SelectContext(ctx, &ids, tx.Rebind(`SELECT id FROM runs WHERE status = ?
			AND NOT EXISTS (SELECT 1 FROM run_jobs j WHERE j.run_id = runs.id) ORDER BY id`), string(runstore.StatusProcessing)); err != nil {
			return fmt.Errorf("sqlstore: recover: %w", err)
		}
		for _, id := range ids {
			if _, err := s.mutateTx(ctx, tx, id, runstore.FailMutation(0, e), now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		s.log.Info("sqlstore: marked interrupted runs failed", "count", len(ids))
	}
	return ids, nil
}

// Delete implements RunStore.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := runstore.CheckID("id", id); err != nil {
		return err
	}
	return s.tx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM runs WHERE id = ?`), id)
		if err != nil {
			return fmt.Errorf("sqlstore: delete run %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlstore: delete run %s: %w", id, err)
		} else if n == 0 {
			return notFound("run", id)
		}
		return nil
	})
}

func (s *Store) exists(ctx context.Context, q querier, id string) error {
	var n int
	if err := q.GetContext(ctx, &n, q.Rebind(`SELECT COUNT(*) FROM runs WHERE id = ?`), id); err != nil {
		return fmt.Errorf("sqlstore: run %s: %w", id, err)
	}
	if n == 0 {
		return notFound("run", id)
	}
	return nil
}

// History implements RunStore.
func (s *Store) History(ctx context.Context, id string) ([]runstore.StatusChange, error) {
	if err := runstore.CheckID("id", id); err != nil {
		return nil, err
	}
	var rows []struct {
		From   string `db:"from_status"`
		To     string `db:"to_status"`
		AtUS   int64  `db:"at_us"`
		Reason string `db:"reason"`
	}
	if err := s.r.SelectContext(ctx, &rows, s.r.Rebind(`SELECT from_status, to_status, at_us, reason FROM run_status_history WHERE run_id = ? ORDER BY id`), id); err != nil {
		return nil, fmt.Errorf("sqlstore: history of %s: %w", id, err)
	}
	if len(rows) == 0 {
		return nil, s.exists(ctx, s.r, id)
	}
	out := make([]runstore.StatusChange, len(rows))
	for i, r := range rows {
		out[i] = runstore.StatusChange{From: runstore.Status(r.From), To: runstore.Status(r.To), At: fromMicros(r.AtUS), Reason: r.Reason}
	}
	return out, nil
}

type fileRow struct {
	ID          int64  `db:"id"`
	RunID       string `db:"run_id"`
	Name        string `db:"name"`
	ContentType string `db:"content_type"`
	Size        int64  `db:"size_bytes"`
	SHA256      string `db:"sha256"`
	StorageKey  string `db:"storage_key"`
	CreatedUS   int64  `db:"created_us"`
}

func (r fileRow) file() runstore.File {
	return runstore.File{ID: r.ID, RunID: r.RunID, CreatedAt: fromMicros(r.CreatedUS),
		FileMeta: runstore.FileMeta{Name: r.Name, ContentType: r.ContentType, Size: r.Size, SHA256: r.SHA256, StorageKey: r.StorageKey}}
}

const fileColumns = `id, run_id, name, content_type, size_bytes, sha256, storage_key, created_us`

// AddFile implements RunStore.
func (s *Store) AddFile(ctx context.Context, runID string, m runstore.FileMeta) (runstore.File, error) {
	if err := runstore.CheckID("run_id", runID); err != nil {
		return runstore.File{}, err
	}
	if err := m.Validate(); err != nil {
		return runstore.File{}, err
	}
	now := stamp(s.clock)
	var f runstore.File
	err := s.tx(ctx, func(tx *txn) error {
		if err := s.exists(ctx, tx, runID); err != nil {
			return err
		}
		var err error
		f, err = s.insertFile(ctx, tx, runID, m, now)
		return err
	})
	if err != nil {
		return runstore.File{}, err
	}
	return f, nil
}

func isForeignKey(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintForeignKey
	}
	return false
}

// Files implements RunStore.
func (s *Store) Files(ctx context.Context, runID string) ([]runstore.File, error) {
	if err := runstore.CheckID("run_id", runID); err != nil {
		return nil, err
	}
	var rows []fileRow
	if err := s.r.SelectContext(ctx, &rows, s.r.Rebind(`SELECT `+fileColumns+` FROM run_files WHERE run_id = ? ORDER BY id`), runID); err != nil {
		return nil, fmt.Errorf("sqlstore: files of %s: %w", runID, err)
	}
	if len(rows) == 0 {
		if err := s.exists(ctx, s.r, runID); err != nil {
			return nil, err
		}
		return []runstore.File{}, nil
	}
	out := make([]runstore.File, len(rows))
	for i, r := range rows {
		out[i] = r.file()
	}
	return out, nil
}

// File implements RunStore.
func (s *Store) File(ctx context.Context, runID string, fileID int64) (runstore.File, error) {
	if err := runstore.CheckID("run_id", runID); err != nil {
		return runstore.File{}, err
	}
	var row fileRow
	err := s.r.GetContext(ctx, &row, s.r.Rebind(`SELECT `+fileColumns+` FROM run_files WHERE run_id = ? AND id = ?`), runID, fileID)
	if errors.Is(err, sql.ErrNoRows) {
		return runstore.File{}, notFound("file", itoa64(fileID))
	}
	if err != nil {
		return runstore.File{}, fmt.Errorf("sqlstore: file %d of %s: %w", fileID, runID, err)
	}
	return row.file(), nil
}

// RecordApply implements runstore.RunStore: the files and the record are
// inserted in one transaction, after checking that a.Parent is still the
// cylinder's latest record. Two writers racing on one parent are also kept
// apart by the unique index on (run, cylinder, parent): the second fails
// with runstore.ErrConflict.
func (s *Store) RecordApply(ctx context.Context, runID string, a runstore.NewApply) (runstore.Apply, error) {
	if err := runstore.CheckID("run_id", runID); err != nil {
		return runstore.Apply{}, err
	}
	if err := a.Validate(); err != nil {
		return runstore.Apply{}, err
	}
	now := stamp(s.clock)
	rec := runstore.Apply{RunID: runID, Cylinder: a.Cylinder, Kind: a.Kind, Parent: a.Parent, CreatedAt: now}
	err := s.tx(ctx, func(tx *txn) error {
		rec.Files = rec.Files[:0]
		if err := s.exists(ctx, tx, runID); err != nil {
			return err
		}
		var latest []struct {
			ID   int64  `db:"id"`
			Kind string `db:"kind"`
		}
		if err := tx.SelectContext(ctx, &latest, tx.Rebind(`SELECT id, kind FROM run_applies WHERE run_id = ? AND cylinder = ? ORDER BY id DESC LIMIT 1`),
			runID, a.Cylinder); err != nil {
			return fmt.Errorf("sqlstore: apply record of %s: %w", runID, err)
		}
		var head *runstore.Apply
		if len(latest) == 1 {
			head = &runstore.Apply{ID: latest[0].ID, Kind: runstore.ApplyKind(latest[0].Kind)}
		}
		if err := runstore.CheckApplyParent(runID, a, head); err != nil {
			return err
		}
		out, err := s.insertApply(ctx, tx, rec, a.Files)
		if isUnique(err) {
			return conflict("run %s cylinder %s changed concurrently", runID, a.Cylinder)
		}
		if err != nil {
			return fmt.Errorf("sqlstore: apply record of %s: %w", runID, err)
		}
		rec = out
		return nil
	})
	if err != nil {
		return runstore.Apply{}, err
	}
	return rec, nil
}

// insertApply writes the apply record rec (its id and files are set in
// the copy returned) with files, as run_files rows made at rec.CreatedAt
// linked in order through run_apply_files. The run_applies insert's error
// comes back unwrapped, so a caller can tell a lost race (isUnique).
func (s *Store) insertApply(ctx context.Context, tx *txn, rec runstore.Apply, files []runstore.FileMeta) (runstore.Apply, error) {
	rec.Files = nil
	if err := tx.GetContext(ctx, &rec.ID, tx.Rebind(`INSERT INTO run_applies (run_id, cylinder, kind, parent_id, created_us)
		VALUES (?, ?, ?, ?, ?) RETURNING id`), rec.RunID, rec.Cylinder, string(rec.Kind), rec.Parent, toMicros(rec.CreatedAt)); err != nil {
		return rec, err
	}
	for i, m := range files {
		f, err := s.insertFile(ctx, tx, rec.RunID, m, rec.CreatedAt)
		if err != nil {
			return rec, fmt.Errorf("file %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO run_apply_files (apply_id, position, file_id) VALUES (?, ?, ?)`),
			rec.ID, i, f.ID); err != nil {
			return rec, err
		}
		rec.Files = append(rec.Files, f)
	}
	return rec, nil
}

// Applies implements runstore.RunStore.
func (s *Store) Applies(ctx context.Context, runID string) ([]runstore.Apply, error) {
	if err := runstore.CheckID("run_id", runID); err != nil {
		return nil, err
	}
	// One row per file; a record's files come in position order.
	q := `SELECT a.id, a.cylinder, a.kind, a.parent_id, a.created_us, f.id, f.run_id, f.name, f.content_type,
			f.size_bytes, f.sha256, f.storage_key, f.created_us
		FROM run_applies a JOIN run_apply_files af ON af.apply_id = a.id JOIN run_files f ON f.id = af.file_id
		WHERE a.run_id = ? ORDER BY a.id, af.position`
	rs, err := s.r.QueryContext(ctx, s.r.Rebind(q), runID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: apply records of %s: %w", runID, err)
	}
	defer rs.Close()
	var out []runstore.Apply
	for rs.Next() {
		var a struct {
			ID, Parent, At int64
			Cylinder, Kind string
		}
		var f fileRow
		if err := rs.Scan(&a.ID, &a.Cylinder, &a.Kind, &a.Parent, &a.At, &f.ID, &f.RunID, &f.Name, &f.ContentType,
			&f.Size, &f.SHA256, &f.StorageKey, &f.CreatedUS); err != nil {
			return nil, fmt.Errorf("sqlstore: apply records of %s: %w", runID, err)
		}
		if len(out) == 0 || out[len(out)-1].ID != a.ID {
			out = append(out, runstore.Apply{ID: a.ID, RunID: runID, Cylinder: a.Cylinder, Kind: runstore.ApplyKind(a.Kind),
				Parent: a.Parent, CreatedAt: fromMicros(a.At)})
		}
		last := &out[len(out)-1]
		last.Files = append(last.Files, f.file())
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: apply records of %s: %w", runID, err)
	}
	if len(out) == 0 {
		if err := s.exists(ctx, s.r, runID); err != nil {
			return nil, err
		}
		return []runstore.Apply{}, nil
	}
	return out, nil
}

// Unreferenced implements runstore.RunStore.
func (s *Store) Unreferenced(ctx context.Context, keys []string) ([]string, error) {
	out := []string{}
	for start := 0; start < len(keys); start += 500 {
		batch := keys[start:min(start+500, len(keys))]
		args := make([]any, len(batch))
		for i, k := range batch {
			args[i] = k
		}
		var used []string
		q := `SELECT DISTINCT storage_key FROM run_files WHERE storage_key IN (?` + strings.Repeat(", ?", len(batch)-1) + `)`
		if err := s.r.SelectContext(ctx, &used, s.r.Rebind(q), args...); err != nil {
			return nil, fmt.Errorf("sqlstore: unreferenced contents: %w", err)
		}
		in := make(map[string]bool, len(used))
		for _, k := range used {
			in[k] = true
		}
		for _, k := range batch {
			if !in[k] {
				out = append(out, k)
			}
		}
	}
	return out, nil
}

func isUnique(err error) bool {
	var pe *pq.Error
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
	}
	return false
}
