package sqlstore

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/dynoai/dynoai/runstore"
)

// Options configure a SQL store. The zero value is ready to use.
type Options struct {
	// Now is the clock; nil means time.Now. Times are stored in UTC with
	// microsecond precision whatever the clock's location.
	Now func() time.Time
	// Logger receives debug and info messages; nil discards them.
	Logger *slog.Logger
	// SkipMigrate opens a store without applying pending migrations (for
	// tools that inspect or migrate explicitly).
	SkipMigrate bool
	// BusyTimeout is how long a SQLite writer waits for another process's
	// lock; zero means 10 s.
	BusyTimeout time.Duration
	// SQLiteSynchronous is SQLite's synchronous pragma: "" or "FULL" (a
	// committed run survives a power loss), or "NORMAL" (survives a process
	// crash, faster).
	SQLiteSynchronous string
	// MaxOpenConns bounds the PostgreSQL pool (and SQLite's reader pool);
	// zero means 15 (4 for SQLite readers).
	MaxOpenConns int
	// Failpoint is called at the steps of every write transaction (see
	// FailpointBeforeCommit); crash tests kill the process there. Nil in
	// production.
	Failpoint runstore.Failpoint
}

func (o Options) clock() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// toMicros converts a time to UTC microseconds since the epoch.
func toMicros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// stamp returns the clock's time in UTC, truncated to microseconds.
func stamp(clock func() time.Time) time.Time {
	return clock().UTC().Truncate(time.Microsecond)
}

func invalid(field, format string, args ...any) error {
	return &runstore.InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func notFound(kind, id string) error {
	return fmt.Errorf("%w: %s %q", runstore.ErrNotFound, kind, id)
}

func conflict(format string, args ...any) error {
	return fmt.Errorf("%w: %s", runstore.ErrConflict, fmt.Sprintf(format, args...))
}

func itoa64(n int64) string { return fmt.Sprint(n) }
