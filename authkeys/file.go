package authkeys

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"
)

// ErrEmptyFile is returned by [File.Check] for a keys file of zero bytes
// while keys are in force: the watcher keeps the keys, since an empty file is
// usually one being rewritten in place. Reload applies it (revoking every
// key), as does a file holding only comments.
var ErrEmptyFile = errors.New("keys file is empty (being rewritten?); previous keys stay in force until an explicit Reload")

// FileOptions configures a [File] store. The zero value is usable.
type FileOptions struct {
	// PollInterval is how often Watch checks the file. Zero means 2 s. It
	// is also how long a deleted keys file may stay missing before its keys
	// are revoked (long enough for a writer that deletes and recreates the
	// file, short enough that deleting the file is a way to revoke).
	PollInterval time.Duration
	// Logger receives reload events (keys_reloaded at Info, reload failures
	// at Error). Nil discards them.
	Logger *slog.Logger
	// Now is the clock (time.Now when nil); tests inject one.
	Now func() time.Time
}

// DefaultPollInterval is the PollInterval used when FileOptions leaves it zero.
const DefaultPollInterval = 2 * time.Second

// File is a KeyStore reading keys from a file (see [ParseFile] for the
// format). Reload re-reads it; Watch polls it and reloads when its size,
// modification time or identity changes, and also re-reads (comparing a
// SHA-256 of the contents) while the modification time is too recent to
// trust, so a rewrite within one timestamp tick is not missed. New contents
// must read the same on two consecutive polls before they apply, and an
// empty (zero-byte) file is not applied by the watcher, so a half-written
// file is not used; writers should still prefer replacing the file by
// rename. A file that fails to read or parse never replaces the keys in
// force (see [ParseFile] for what makes a file whole).
//
// Deleting the keys file revokes its keys: once Check has seen the file
// missing for at least PollInterval (as measured by FileOptions.Now), the
// store holds no keys until the file is back.
type File struct {
	holder
	path string
	opts FileOptions
	log  *slog.Logger

	mu         sync.Mutex // serialises reloads and checks
	lastStat   os.FileInfo
	lastSum    [sha256.Size]byte // contents in force
	pending    bool              // new contents seen once, not yet applied
	pendingSum [sha256.Size]byte
	missing    time.Time // when Check first saw the file missing; zero if present
}

// OpenFile reads the keys file at path. A missing, unreadable or malformed
// file is an error (errors.Is(err, fs.ErrNotExist) for a missing one;
// errors.As(err, **ParseError) for a malformed one).
func OpenFile(path string, opts FileOptions) (*File, error) {
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &File{path: path, opts: opts, log: log}
	if _, err := f.Reload(context.Background()); err != nil {
		return nil, err
	}
	return f, nil
}

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// Verify implements KeyStore.
func (f *File) Verify(_ context.Context, presented string) (Identity, error) {
	return f.load().verify(presented)
}

// Reload re-reads the file unconditionally and swaps the key set atomically.
func (f *File) Reload(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return f.Len(), err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	data, sum, err := f.readLocked()
	if err != nil {
		return f.Len(), err
	}
	f.pending = false
	return f.applyLocked(data, sum)
}

// readLocked reads the file and records its stat.
func (f *File) readLocked() ([]byte, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, sum, fmt.Errorf("authkeys: keys file: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, sum, fmt.Errorf("authkeys: keys file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, sum, fmt.Errorf("authkeys: keys file %s: not a regular file", f.path)
	}
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileBytes+1))
	if err != nil {
		return nil, sum, fmt.Errorf("authkeys: keys file %s: %w", f.path, err)
	}
	f.lastStat = st
	return data, sha256.Sum256(data), nil
}

// applyLocked parses data and swaps it in.
func (f *File) applyLocked(data []byte, sum [sha256.Size]byte) (int, error) {
	entries, err := ParseFile(data)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.Path = f.path
		} else {
			err = fmt.Errorf("authkeys: keys file %s: %w", f.path, err)
		}
		return f.Len(), err
	}
	s := newKeySet(entries)
	f.p.Store(s)
	f.lastSum = sum
	return len(s.digests), nil
}

// Check looks at the file once, as one tick of Watch does, and reports
// whether the key set was replaced.
//
// New contents are applied only once two consecutive checks read the same
// bytes, so a file caught half-written (truncated, or with a key cut short)
// is never applied; a writer that replaces the file by rename is seen one
// check later than the change. Explicit Reload applies immediately.
func (f *File) Check(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		f.pending = false
		now := f.opts.Now()
		if f.missing.IsZero() {
			f.missing = now
		}
		if now.Sub(f.missing) >= f.opts.PollInterval && f.Len() > 0 {
			f.p.Store(emptySet)
			f.lastSum, f.lastStat = [sha256.Size]byte{}, nil
			f.log.Warn("api keys file deleted; its keys are revoked", "event", "keys_revoked", "path", f.path)
			return true, nil
		}
		return false, fmt.Errorf("authkeys: keys file: %w", err)
	}
	f.missing = time.Time{}
	if err != nil {
		f.pending = false
		return false, fmt.Errorf("authkeys: keys file: %w", err)
	}
	prev := f.lastStat
	same := prev != nil && os.SameFile(prev, st) && prev.Size() == st.Size() && prev.ModTime().Equal(st.ModTime())
	// A modification time this close to now may hide a second write within
	// the same timestamp tick: compare contents until it has aged.
	racy := f.opts.Now().Sub(st.ModTime()) < 2*f.opts.PollInterval+time.Second
	if same && !racy && !f.pending {
		return false, nil
	}
	data, sum, err := f.readLocked()
	if err != nil {
		f.pending = false
		return false, err
	}
	switch {
	case sum == f.lastSum:
		f.pending = false
		return false, nil
	case len(data) == 0 && f.Len() > 0:
		// Zero bytes is what an in-place rewrite looks like between its
		// truncate and its write, however long the writer stalls: never
		// taken as "revoke every key" by a watcher.
		f.pending = false
		return false, fmt.Errorf("authkeys: keys file %s: %w", f.path, ErrEmptyFile)
	case !f.pending || sum != f.pendingSum:
		f.pending, f.pendingSum = true, sum
		return false, nil
	}
	f.pending = false
	n, err := f.applyLocked(data, sum)
	if err != nil {
		return false, err
	}
	f.log.Info("api keys reloaded", "event", "keys_reloaded", "path", f.path, "keys", n)
	return true, nil
}

// Watch checks the file (see [File.Check]) every PollInterval until ctx is
// done. Failures are logged at Error and the previous keys stay in force;
// the same failure is logged once, not on every tick. It returns ctx.Err().
func (f *File) Watch(ctx context.Context) error {
	t := time.NewTimer(f.opts.PollInterval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		_, err := f.Check(ctx)
		switch {
		case err != nil && ctx.Err() == nil && err.Error() != lastErr:
			lastErr = err.Error()
			level := slog.LevelError
			if errors.Is(err, ErrEmptyFile) {
				level = slog.LevelWarn
			}
			f.log.Log(ctx, level, "api keys reload failed; previous keys stay in force",
				"event", "keys_reload_failed", "path", f.path, "error", err, "keys", f.Len())
		case err == nil:
			lastErr = ""
		}
		// Re-armed after the check, so two checks are always at least one
		// interval apart (the settling rule of Check depends on it).
		t.Reset(f.opts.PollInterval)
	}
}
