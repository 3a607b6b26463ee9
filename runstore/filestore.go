package runstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Blob is what a FileStore reports after storing contents.
type Blob struct {
	Key    string // the contents' SHA-256 in lowercase hex (see FileStore)
	Size   int64
	SHA256 string // lowercase hex; equal to Key
}

// BlobInfo describes stored contents, as Stat and List report them.
type BlobInfo struct {
	Key     string
	Size    int64
	ModTime time.Time // when the contents were last stored (Put)
}

// FileStore keeps file contents. It is content-addressed: Put stores
// contents under their SHA-256 in lowercase hex, so a key always names the
// same bytes and storing the same contents twice is harmless (the second
// Put rewrites them, atomically, and refreshes their modification time).
// Contents may therefore be shared by several files of several runs; see
// DeleteRun and SweepFiles for how they are removed.
//
// A key handed to Open, Stat or Delete that the store could not have made
// (64 hex digits, or the 32 random hex digits of contents stored before
// content addressing) is ErrInvalid, so a key can never name something
// outside the store.
type FileStore interface {
	// Put stores everything r yields and returns its key, size and SHA-256.
	// Put is atomic and durable: when it returns nil the contents are on
	// stable storage under their key; on error nothing is left behind.
	Put(ctx context.Context, r io.Reader) (Blob, error)
	// Open returns the contents stored under key, or ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat describes the contents stored under key, or ErrNotFound.
	Stat(ctx context.Context, key string) (BlobInfo, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every stored key, in no particular order, until fn
	// returns an error (which List returns).
	List(ctx context.Context, fn func(BlobInfo) error) error
	// Probe proves the store works now: a durable write, a read back and a
	// removal of a probe object. It fails with an error matching
	// ErrUnavailable when the store cannot keep contents (its directory was
	// deleted or replaced, the disk refuses writes).
	Probe(ctx context.Context) error
}

// ErrUnavailable reports that a store cannot be used now: its database file
// or directory was deleted or replaced under the process, or it refuses
// writes. Nothing was stored by the call that returned it.
var ErrUnavailable = errors.New("runstore: store unavailable")

// legacyKey reports a key of the random form used before content
// addressing: such contents belong to exactly one file.
func legacyKey(key string) bool { return isHex(key, 32) }

// CheckStorageKey returns an *InvalidError unless key is of a form a file
// store makes: 64 lowercase hex digits (a SHA-256), or the 32 random hex
// digits of contents stored before content addressing. FileStore
// implementations call it before using a key, so that a key can never name
// something outside the store.
func CheckStorageKey(key string) error {
	if !isHex(key, 64) && !legacyKey(key) {
		return invalid("file.storage_key", "%q was not made by this file store", truncate(key, 80))
	}
	return nil
}

func checkKey(key string) error { return CheckStorageKey(key) }

// Failpoint, when set in a store's options, is called at the named steps of
// a multi-step write (see the constants). Crash tests kill the process
// there to prove each step boundary is safe; production code leaves it nil.
type Failpoint func(name string)

// The failpoints of LocalFileStore.Put, in order.
const (
	FailpointBlobWritten   = "blob.written"   // contents written to a temporary file, not yet synced
	FailpointBlobSynced    = "blob.synced"    // temporary file synced, not yet renamed
	FailpointBlobRenamed   = "blob.renamed"   // renamed to its key, directory not yet synced
	FailpointBlobDirSynced = "blob.dirsynced" // directory synced: the contents are durable
)

// LocalFileStoreOptions configure NewLocalFileStore. The zero value is
// ready to use.
type LocalFileStoreOptions struct {
	// Failpoint is called at each step of Put; nil in production.
	Failpoint Failpoint
}

// LocalFileStore keeps file contents in a directory, as
// <dir>/<first two key digits>/<key>. Keys are hex digits only, so a path
// cannot escape the directory. Put writes a temporary file, syncs it,
// renames it to its key and syncs the directory (and, for a new
// subdirectory, the root), so contents are durable before Put returns.
//
// The store remembers which directory it opened: if the directory is later
// deleted or replaced, Put, Probe and List fail with ErrUnavailable instead
// of recreating an empty directory.
type LocalFileStore struct {
	dir  string
	root os.FileInfo
	// held keeps the directory open so that its inode cannot be reused by
	// a directory created in its place (which would fool os.SameFile).
	held *os.File
	fail Failpoint
}

var (
	_ FileStore   = (*LocalFileStore)(nil)
	_ TempSweeper = (*LocalFileStore)(nil)
)

// NewLocalFileStore returns a store rooted at dir, creating it if needed.
func NewLocalFileStore(dir string, opts LocalFileStoreOptions) (*LocalFileStore, error) {
	if dir == "" {
		return nil, invalid("dir", "empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("runstore: file store %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("runstore: file store: %w", err)
	}
	held, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("runstore: file store: %w", err)
	}
	st, err := held.Stat()
	if err != nil {
		held.Close()
		return nil, fmt.Errorf("runstore: file store: %w", err)
	}
	fail := opts.Failpoint
	if fail == nil {
		fail = func(string) {}
	}
	return &LocalFileStore{dir: abs, root: st, held: held, fail: fail}, nil
}

// Close releases the directory the store holds open. The store must not be
// used afterwards.
func (s *LocalFileStore) Close() error { return s.held.Close() }

// String names the store: "directory <absolute path>".
func (s *LocalFileStore) String() string { return "directory " + s.dir }

// Dir returns the store's absolute directory.
func (s *LocalFileStore) Dir() string { return s.dir }

func (s *LocalFileStore) path(key string) string {
	return filepath.Join(s.dir, key[:2], key)
}

// checkRoot fails with ErrUnavailable when the store's directory is gone or
// is no longer the directory the store opened.
func (s *LocalFileStore) checkRoot() error {
	st, err := os.Stat(s.dir)
	if err != nil {
		return fmt.Errorf("%w: file store directory %s: %v", ErrUnavailable, s.dir, err)
	}
	if !os.SameFile(st, s.root) {
		return fmt.Errorf("%w: file store directory %s was replaced", ErrUnavailable, s.dir)
	}
	return nil
}

// syncDir makes a rename or a creation in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Put implements FileStore.
func (s *LocalFileStore) Put(ctx context.Context, r io.Reader) (b Blob, err error) {
	if err := s.checkRoot(); err != nil {
		return Blob{}, err
	}
	// The key is known only after reading: write into the root, then
	// rename into the key's subdirectory.
	tmp, err := os.CreateTemp(s.dir, ".put-*")
	if err != nil {
		return Blob{}, fmt.Errorf("runstore: file store: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, r})
	if err != nil {
		return Blob{}, fmt.Errorf("runstore: file store: writing contents: %w", err)
	}
	key := hex.EncodeToString(h.Sum(nil))
	s.fail(FailpointBlobWritten)
	if err = tmp.Sync(); err != nil {
		return Blob{}, fmt.Errorf("runstore: file store: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return Blob{}, fmt.Errorf("runstore: file store: %w", err)
	}
	s.fail(FailpointBlobSynced)
	sub := filepath.Join(s.dir, key[:2])
	created := false
	if err = os.Mkdir(sub, 0o750); err == nil {
		created = true
	} else if !errors.Is(err, fs.ErrExist) {
		return Blob{}, fmt.Errorf("runstore: file store: %w", err)
	}
	if err = os.Rename(tmp.Name(), s.path(key)); err != nil {
		return Blob{}, fmt.Errorf("runstore: file store: %w", err)
	}
	s.fail(FailpointBlobRenamed)
	// Durable rename: the key's directory, and the root when the key's
	// directory is new (or the rename out of the root, which it holds).
	if err = syncDir(sub); err == nil && created {
		err = syncDir(s.dir)
	}
	if err != nil {
		// The contents are under their key but not known durable: report
		// failure, and leave them (identical bytes may be shared).
		return Blob{}, fmt.Errorf("runstore: file store: syncing directory: %w", err)
	}
	s.fail(FailpointBlobDirSynced)
	return Blob{Key: key, Size: n, SHA256: key}, nil
}

// Open implements FileStore.
func (s *LocalFileStore) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFound("file contents", key)
	}
	if err != nil {
		return nil, fmt.Errorf("runstore: file store: %w", err)
	}
	return f, nil
}

// Stat implements FileStore.
func (s *LocalFileStore) Stat(ctx context.Context, key string) (BlobInfo, error) {
	if err := ctx.Err(); err != nil {
		return BlobInfo{}, err
	}
	if err := checkKey(key); err != nil {
		return BlobInfo{}, err
	}
	st, err := os.Stat(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return BlobInfo{}, notFound("file contents", key)
	}
	if err != nil {
		return BlobInfo{}, fmt.Errorf("runstore: file store: %w", err)
	}
	return BlobInfo{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Delete implements FileStore.
func (s *LocalFileStore) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	err := os.Remove(s.path(key))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("runstore: file store: %w", err)
	}
	return nil
}

// List implements FileStore. Temporary files of a Put in progress (or of a
// process killed during one) are not listed.
func (s *LocalFileStore) List(ctx context.Context, fn func(BlobInfo) error) error {
	if err := s.checkRoot(); err != nil {
		return err
	}
	subs, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("runstore: file store: %w", err)
	}
	for _, sub := range subs {
		if !sub.IsDir() || !isHex(sub.Name(), 2) {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(s.dir, sub.Name()))
		if err != nil {
			return fmt.Errorf("runstore: file store: %w", err)
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				return err
			}
			key := e.Name()
			if checkKey(key) != nil || key[:2] != sub.Name() {
				continue
			}
			info, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted meanwhile
			}
			if err != nil {
				return fmt.Errorf("runstore: file store: %w", err)
			}
			if err := fn(BlobInfo{Key: key, Size: info.Size(), ModTime: info.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Probe implements FileStore: it writes a probe file, syncs it and the
// directory, reads it back, compares and removes it.
func (s *LocalFileStore) Probe(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.checkRoot(); err != nil {
		return err
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	want := []byte("dynoai file store probe " + hex.EncodeToString(nonce[:]))
	fail := func(step string, err error) error {
		return fmt.Errorf("%w: file store %s: probe %s: %v", ErrUnavailable, s.dir, step, err)
	}
	f, err := os.CreateTemp(s.dir, ".probe-*")
	if err != nil {
		return fail("create", err)
	}
	name := f.Name()
	defer os.Remove(name)
	_, err = f.Write(want)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail("write", err)
	}
	if err := syncDir(s.dir); err != nil {
		return fail("sync directory", err)
	}
	got, err := os.ReadFile(name)
	if err != nil {
		return fail("read", err)
	}
	if !bytes.Equal(got, want) {
		return fail("read", errors.New("read back different bytes"))
	}
	if err := os.Remove(name); err != nil {
		return fail("remove", err)
	}
	// The directory may have been replaced while probing.
	return s.checkRoot()
}

// SweepTemp implements TempSweeper: it removes the temporary files of
// Puts and Probes (".put-*", ".probe-*" in the store's root) last written
// before cutoff. A Put in progress rewrites its temporary file's
// modification time with every write, so only a write stalled since cutoff
// can lose its temporary file, and then its rename fails: Put returns an
// error and stores nothing.
func (s *LocalFileStore) SweepTemp(ctx context.Context, cutoff time.Time) (TempSweep, error) {
	var st TempSweep
	if err := s.checkRoot(); err != nil {
		return st, err
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return st, fmt.Errorf("runstore: file store: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		name := e.Name()
		if !e.Type().IsRegular() || !(strings.HasPrefix(name, ".put-") || strings.HasPrefix(name, ".probe-")) {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		st.Removed++
		st.Bytes += info.Size()
	}
	if err := errors.Join(errs...); err != nil {
		return st, fmt.Errorf("runstore: file store: sweeping temporary files: %w", err)
	}
	return st, nil
}

// ctxReader stops a copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// MemFileStore is an in-memory FileStore for tests. The zero value is not
// usable; call NewMemFileStore.
type MemFileStore struct {
	mu    sync.Mutex
	blobs map[string]memBlob
	now   func() time.Time
	down  error
}

type memBlob struct {
	data []byte
	mod  time.Time
}

var _ FileStore = (*MemFileStore)(nil)

// NewMemFileStore returns an empty in-memory file store.
func NewMemFileStore() *MemFileStore {
	return &MemFileStore{blobs: make(map[string]memBlob), now: time.Now}
}

// String names the store: "memory".
func (s *MemFileStore) String() string { return "memory" }

// SetClock sets the clock that stamps stored contents (time.Now when nil).
func (s *MemFileStore) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now == nil {
		now = time.Now
	}
	s.now = now
}

// SetUnavailable makes every call fail with err (wrapped in ErrUnavailable)
// until it is called with nil, standing in for a disk that refuses writes.
func (s *MemFileStore) SetUnavailable(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = err
}

func (s *MemFileStore) checkDown() error {
	if s.down != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, s.down)
	}
	return nil
}

// Len returns the number of stored contents.
func (s *MemFileStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.blobs)
}

// Put implements FileStore.
func (s *MemFileStore) Put(ctx context.Context, r io.Reader) (Blob, error) {
	data, err := io.ReadAll(ctxReader{ctx, r})
	if err != nil {
		return Blob{}, fmt.Errorf("runstore: file store: reading contents: %w", err)
	}
	sum := sha256.Sum256(data)
	key := hex.EncodeToString(sum[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkDown(); err != nil {
		return Blob{}, err
	}
	s.blobs[key] = memBlob{data: data, mod: s.now()}
	return Blob{Key: key, Size: int64(len(data)), SHA256: key}, nil
}

// Open implements FileStore.
func (s *MemFileStore) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	s.mu.Lock()
	b, ok := s.blobs[key]
	down := s.checkDown()
	s.mu.Unlock()
	if down != nil {
		return nil, down
	}
	if !ok {
		return nil, notFound("file contents", key)
	}
	return io.NopCloser(bytes.NewReader(b.data)), nil
}

// Stat implements FileStore.
func (s *MemFileStore) Stat(ctx context.Context, key string) (BlobInfo, error) {
	if err := checkKey(key); err != nil {
		return BlobInfo{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkDown(); err != nil {
		return BlobInfo{}, err
	}
	b, ok := s.blobs[key]
	if !ok {
		return BlobInfo{}, notFound("file contents", key)
	}
	return BlobInfo{Key: key, Size: int64(len(b.data)), ModTime: b.mod}, nil
}

// Delete implements FileStore.
func (s *MemFileStore) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkDown(); err != nil {
		return err
	}
	delete(s.blobs, key)
	return nil
}

// List implements FileStore.
func (s *MemFileStore) List(ctx context.Context, fn func(BlobInfo) error) error {
	s.mu.Lock()
	if err := s.checkDown(); err != nil {
		s.mu.Unlock()
		return err
	}
	infos := make([]BlobInfo, 0, len(s.blobs))
	for k, b := range s.blobs {
		infos = append(infos, BlobInfo{Key: k, Size: int64(len(b.data)), ModTime: b.mod})
	}
	s.mu.Unlock()
	slices.SortFunc(infos, func(a, b BlobInfo) int { return bytes.Compare([]byte(a.Key), []byte(b.Key)) })
	for _, in := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}

// Probe implements FileStore.
func (s *MemFileStore) Probe(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkDown()
}

// Corrupt flips one byte of stored contents (for tests of ErrChecksum). It
// reports whether key exists and is non-empty.
func (s *MemFileStore) Corrupt(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[key]
	if !ok || len(b.data) == 0 {
		return false
	}
	b.data = bytes.Clone(b.data)
	b.data[len(b.data)/2] ^= 0xff
	s.blobs[key] = b
	return true
}

// Replace sets the bytes stored under key without changing their
// modification time, as a disk or an operator changing them behind the
// store's back would (for tests of ErrChecksum). It reports whether key
// exists.
func (s *MemFileStore) Replace(key string, data []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[key]
	if !ok {
		return false
	}
	b.data = bytes.Clone(data)
	s.blobs[key] = b
	return true
}

// MinUnreferencedAge is the grace period of everything a file store may
// hold that nothing refers to: how long contents must have gone unwritten
// before DeleteRun or SweepFiles removes them when no file refers to them,
// and how old a temporary object left by a write must be before SweepFiles
// removes it (see TempSweeper).
//
// The rule that keeps a write in flight from losing its contents: a writer
// stores contents (Put, which rewrites them and so refreshes their
// modification time even when they were already stored) and then records
// the file that refers to them; Attach, Record and CommitApply refuse to
// record a file whose contents were stored longer ago than half this age.
// So contents younger than the grace are either about to be referred to or
// abandoned, and contents older than it that nothing refers to are
// abandoned, even when several runs share them. The other half of the grace
// absorbs clock skew between the replicas (whose clocks stamp storedAt) and
// the store (whose clock stamps modification times, as an object store's
// server does), and a sweep that checked a key just before a writer stored
// it again: SweepFiles looks at a key's modification time again right
// before deleting it.
//
// A temporary object exists only while a Put streams or copies it; a Put
// that finds its temporary object swept fails, so it never records
// contents it did not store.
const MinUnreferencedAge = time.Hour

// TempSweep reports what a TempSweeper removed.
type TempSweep struct {
	Removed int   // temporary objects removed
	Bytes   int64 // their bytes
}

// TempSweeper is implemented by file stores whose writes go through
// temporary objects that a crash can leave behind (LocalFileStore's
// temporary files, an object store's temporary keys). SweepFiles calls
// SweepTemp with cutoff = now - MinUnreferencedAge.
type TempSweeper interface {
	// SweepTemp removes the temporary objects last written before cutoff
	// and reports how many it removed.
	SweepTemp(ctx context.Context, cutoff time.Time) (TempSweep, error)
}

// errStale is returned by the writers when recording would come too late
// after Put (see MinUnreferencedAge).
func errStale(name string, since time.Duration) error {
	return fmt.Errorf("%w: the contents of %q were stored %v ago, too long before recording them; store them again",
		ErrConflict, name, since.Round(time.Second))
}

// Attach stores r's contents in fs and records them as a file of run runID
// in rs. If recording fails the contents are left for SweepFiles (the same
// bytes may belong to another file).
func Attach(ctx context.Context, rs RunStore, fs FileStore, runID, name, contentType string, r io.Reader) (File, error) {
	// Refuse bad input before storing anything.
	if err := CheckID("run_id", runID); err != nil {
		return File{}, err
	}
	if err := checkName("file.name", name, true); err != nil {
		return File{}, err
	}
	if err := checkText("file.content_type", contentType, maxShortText, true); err != nil {
		return File{}, err
	}
	b, err := fs.Put(ctx, r)
	if err != nil {
		return File{}, err
	}
	return Record(ctx, rs, runID, FileMeta{Name: name, ContentType: contentType, Size: b.Size, SHA256: b.SHA256, StorageKey: b.Key}, time.Now())
}

// Record records contents stored at storedAt (just before Put returned) as
// a file of run runID. It refuses, with ErrConflict, when more than half of
// MinUnreferencedAge has passed since: a sweep could have removed them.
func Record(ctx context.Context, rs RunStore, runID string, m FileMeta, storedAt time.Time) (File, error) {
	if since := time.Since(storedAt); since > MinUnreferencedAge/2 {
		return File{}, errStale(m.Name, since)
	}
	return rs.AddFile(ctx, runID, m)
}

// OpenFile returns a file of a run and a reader of its contents. The reader
// verifies size and SHA-256 as it goes: the Read that reaches the end of
// corrupted or truncated contents returns an error matching ErrChecksum
// instead of io.EOF.
func OpenFile(ctx context.Context, rs RunStore, fs FileStore, runID string, fileID int64) (File, io.ReadCloser, error) {
	f, err := rs.File(ctx, runID, fileID)
	if err != nil {
		return File{}, nil, err
	}
	rc, err := fs.Open(ctx, f.StorageKey)
	if err != nil {
		return File{}, nil, err
	}
	return f, &verifier{rc: rc, h: sha256.New(), want: f.FileMeta}, nil
}

type verifier struct {
	rc   io.ReadCloser
	h    hash.Hash
	n    int64
	want FileMeta
	err  error
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.want.Size {
		v.err = fmt.Errorf("%w: file %q is longer than its recorded %d bytes", ErrChecksum, v.want.Name, v.want.Size)
		return n, v.err
	}
	if err == io.EOF {
		if v.n != v.want.Size {
			v.err = fmt.Errorf("%w: file %q has %d bytes, recorded %d", ErrChecksum, v.want.Name, v.n, v.want.Size)
		} else if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.SHA256 {
			v.err = fmt.Errorf("%w: file %q has SHA-256 %s, recorded %s", ErrChecksum, v.want.Name, got, v.want.SHA256)
		} else {
			v.err = io.EOF
		}
		return n, v.err
	}
	return n, err
}

func (v *verifier) Close() error { return v.rc.Close() }

// ReadFile reads a whole file of a run, verifying its checksum.
func ReadFile(ctx context.Context, rs RunStore, fs FileStore, runID string, fileID int64) (File, []byte, error) {
	f, rc, err := OpenFile(ctx, rs, fs, runID, fileID)
	if err != nil {
		return File{}, nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return File{}, nil, err
	}
	return f, data, nil
}

// DeleteRun deletes a run from rs and then the contents of its files that
// no other file refers to. Contents stored less than MinUnreferencedAge ago
// are left for SweepFiles: a writer may be about to refer to the same bytes.
// Contents whose deletion fails are reported in the error (joined) but the
// run is gone.
func DeleteRun(ctx context.Context, rs RunStore, fs FileStore, runID string) error {
	files, err := rs.Files(ctx, runID)
	if err != nil {
		return err
	}
	if err := rs.Delete(ctx, runID); err != nil {
		return err
	}
	keys := make([]string, 0, len(files))
	for _, f := range files {
		if !slices.Contains(keys, f.StorageKey) {
			keys = append(keys, f.StorageKey)
		}
	}
	_, err = removeUnreferenced(ctx, rs, fs, keys, time.Now())
	return err
}

// removeUnreferenced deletes those of keys no file refers to, unless they
// were stored less than MinUnreferencedAge before now. Contents of the
// random, pre-content-addressing form belong to one file only and go at
// once.
func removeUnreferenced(ctx context.Context, rs RunStore, fs FileStore, keys []string, now time.Time) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	unref, err := rs.Unreferenced(ctx, keys)
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, k := range unref {
		if !legacyKey(k) {
			st, err := fs.Stat(ctx, k)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("contents %s: %w", k, err))
				continue
			}
			if now.Sub(st.ModTime) < MinUnreferencedAge {
				continue
			}
		}
		if err := fs.Delete(ctx, k); err != nil {
			errs = append(errs, fmt.Errorf("contents %s: %w", k, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// SweepStats reports what SweepFiles did.
type SweepStats struct {
	Seen    int   // contents listed
	Removed int   // contents removed
	Bytes   int64 // bytes removed
	// TempRemoved and TempBytes count the temporary objects of crashed
	// writes removed (stores that implement TempSweeper).
	TempRemoved int
	TempBytes   int64
}

// SweepFiles removes contents that no file of any run refers to and that
// were stored at least MinUnreferencedAge before now (time.Now when zero):
// uploads refused after storing, files of deleted runs, and the leftovers of
// a process killed between storing contents and recording them. When fs is
// a TempSweeper it also removes the temporary objects of writes that
// crashed at least MinUnreferencedAge before now.
func SweepFiles(ctx context.Context, rs RunStore, fs FileStore, now time.Time) (SweepStats, error) {
	if now.IsZero() {
		now = time.Now()
	}
	var st SweepStats
	if ts, ok := fs.(TempSweeper); ok {
		tst, err := ts.SweepTemp(ctx, now.Add(-MinUnreferencedAge))
		st.TempRemoved, st.TempBytes = tst.Removed, tst.Bytes
		if err != nil {
			return st, err
		}
	}
	sizes := map[string]int64{}
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		unref, err := rs.Unreferenced(ctx, batch)
		batch = batch[:0]
		if err != nil {
			return err
		}
		for _, k := range unref {
			// Stored again since it was listed? Then a writer may be about
			// to refer to it.
			if !legacyKey(k) {
				in, err := fs.Stat(ctx, k)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if now.Sub(in.ModTime) < MinUnreferencedAge {
					continue
				}
			}
			if err := fs.Delete(ctx, k); err != nil {
				return err
			}
			st.Removed++
			st.Bytes += sizes[k]
		}
		clear(sizes)
		return nil
	}
	err := fs.List(ctx, func(in BlobInfo) error {
		st.Seen++
		if now.Sub(in.ModTime) < MinUnreferencedAge {
			return nil
		}
		batch = append(batch, in.Key)
		sizes[in.Key] = in.Size
		if len(batch) >= 500 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return st, err
}

// Content is one file of an apply or rollback, as CommitApply stores it.
type Content struct {
	Name        string
	ContentType string
	Data        []byte
}

// CommitApply stores the contents of an apply (the applied table, the
// effective correction and the manifest) or of a rollback (the restored
// table) in fs and records them with the apply record in rs, in one
// transaction: the contents are durable (Put) before the record is
// committed, and the record points at them by content hash. A crash at any
// point leaves either the previous state or the new one; contents stored by
// an attempt that never committed are unreferenced and go in a sweep.
func CommitApply(ctx context.Context, rs RunStore, fs FileStore, runID string, a NewApply, contents []Content) (Apply, error) {
	if err := CheckID("run_id", runID); err != nil {
		return Apply{}, err
	}
	a.Files = make([]FileMeta, len(contents))
	for i, c := range contents {
		if err := checkName("file.name", c.Name, true); err != nil {
			return Apply{}, err
		}
		a.Files[i] = FileMeta{Name: c.Name, ContentType: c.ContentType, Size: int64(len(c.Data)),
			SHA256: sha256Hex(c.Data), StorageKey: sha256Hex(c.Data)}
	}
	if err := a.Validate(); err != nil {
		return Apply{}, err
	}
	start := time.Now()
	for i, c := range contents {
		b, err := fs.Put(ctx, bytes.NewReader(c.Data))
		if err != nil {
			return Apply{}, err
		}
		if b.Key != a.Files[i].StorageKey {
			return Apply{}, fmt.Errorf("%w: the file store keyed %q as %s, not by its SHA-256", ErrChecksum, c.Name, b.Key)
		}
	}
	if since := time.Since(start); since > MinUnreferencedAge/2 {
		return Apply{}, errStale(a.Cylinder+" apply", since)
	}
	return rs.RecordApply(ctx, runID, a)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
