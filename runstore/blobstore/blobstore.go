// Package blobstore keeps DynoAI's file contents in a gocloud.dev
// *blob.Bucket: S3-compatible object storage (s3://), a directory through
// gocloud's fileblob (file://), or memory (mem://). Store implements
// runstore.FileStore, so several server replicas can share one bucket.
//
// It lives apart from package runstore so that a program that only needs
// the FileStore interface, or the local directory store, does not link the
// AWS SDK.
//
// # Layout and writes
//
// Contents are content-addressed like runstore.LocalFileStore's: the key
// is the SHA-256 of the contents in lowercase hex, and the object lives at
// <first two key digits>/<key>, the same layout as LocalFileStore's
// directory, so a directory can be uploaded to a bucket as it is. Object
// stores have no rename, so Put streams the contents under a temporary key
// (tmp/<random>) while hashing them, then copies that object to its content
// key and deletes the temporary one. A content key is therefore only ever
// written by a copy of a complete, already hashed object: a crash or an
// error at any point leaves at most a temporary object, never a partial
// object under a content key. Temporary objects left by a crash are removed
// by runstore.SweepFiles (Store is a runstore.TempSweeper) once they are
// runstore.MinUnreferencedAge old.
//
// Streaming to a temporary key was chosen over spooling the contents to a
// local file and uploading them under their key: it needs no local disk
// (replicas in containers often have little), reads the upload once, and
// leaves crash debris in the bucket, where the sweep finds it, rather than
// on the disk of a replica that may never come back. Its cost is a
// server-side copy per Put (S3 CopyObject; a local copy on file://). The
// copy also refreshes the contents' modification time when they were
// already stored, which runstore's sweeping rule relies on.
//
// Checksums are verified on read by runstore.OpenFile, as for every
// FileStore.
//
// # Durability
//
// On S3 an object is durable when the request that wrote it returns. On
// file:// gocloud's fileblob writes a temporary file and renames it, but
// it never calls fsync, neither on the file nor on its directory: a process
// crash loses nothing, but a power cut or a kernel crash shortly after Put
// returned can lose the contents or leave them truncated (OpenFile then
// reports runstore.ErrChecksum). runstore.LocalFileStore syncs the file and
// the directory before Put returns, so it stays the default for a plain
// directory; file:// URLs are for directories that several replicas mount
// (a network file system) or for trying the blob store locally.
//
// # URLs
//
// Open accepts:
//
//   - s3://bucket?region=us-east-1 (AWS), or for an S3-compatible server
//     s3://bucket?endpoint=http://127.0.0.1:7070&region=us-east-1&use_path_style=true.
//     Credentials come from the standard AWS sources: AWS_ACCESS_KEY_ID and
//     AWS_SECRET_ACCESS_KEY, a shared profile, or an instance role; never
//     from the URL. The other query parameters of gocloud.dev/blob/s3blob
//     are accepted too.
//   - file:///absolute/dir (gocloud's fileblob). The directory is created
//     if missing, no metadata sidecar files are written, and temporary files
//     are made next to their target (not in $TMPDIR, which may be another
//     file system), unless the URL sets create_dir, metadata or no_tmp_dir.
//   - mem:// (memblob): an empty bucket in memory, for tests.
//
// Every scheme takes prefix=dir/ to keep the store's objects under a
// prefix of a shared bucket.
package blobstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	"github.com/dynoai/dynoai/runstore"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file://
	_ "gocloud.dev/blob/memblob"  // mem://
	_ "gocloud.dev/blob/s3blob"   // s3://
	"gocloud.dev/gcerrors"
)

// TempPrefix is the prefix of the temporary keys that Put writes through
// and Probe writes to.
const TempPrefix = "tmp/"

// The failpoints of Store.Put, in order.
const (
	FailpointTempWritten = "blobstore.temp_written" // contents stored under a temporary key, not yet copied
	FailpointCopied      = "blobstore.copied"       // copied to their content key, temporary key not yet deleted
	FailpointTempDeleted = "blobstore.temp_deleted" // temporary key deleted: Put is done
)

// contentType is what every object is stored as; naming it saves gocloud
// from buffering the first bytes to guess one.
const contentType = "application/octet-stream"

// cleanupTimeout bounds the removal of a temporary object after a failed
// Put, which runs even when the Put's context was cancelled.
const cleanupTimeout = 30 * time.Second

// Options configure New and Open. The zero value is ready to use.
type Options struct {
	// Name names the store in errors and in the server's health report.
	// Open sets it from the URL (without credentials); New uses "blob
	// bucket" when it is empty.
	Name string
	// Failpoint is called at each step of Put; nil in production.
	Failpoint runstore.Failpoint
	// Logger receives what Put cannot report through its result: a
	// temporary object it could not delete after storing the contents
	// (the sweep removes it later). Nil discards.
	Logger *slog.Logger
}

// Store is a runstore.FileStore over a gocloud.dev bucket. It is safe for
// concurrent use, also by several processes sharing the bucket.
type Store struct {
	b    *blob.Bucket
	name string
	fail runstore.Failpoint
	log  *slog.Logger
	// scanAll: the bucket is a fileblob directory, whose copies leave
	// <object>.<hex>.tmp files next to their target when killed.
	scanAll bool
	// root is the directory of a file:// store, held open so that its
	// inode cannot be reused by a directory made in its place; nil for
	// other stores.
	root     *os.File
	rootInfo os.FileInfo
}

var (
	_ runstore.FileStore   = (*Store)(nil)
	_ runstore.TempSweeper = (*Store)(nil)
)

// New returns a store over b. Close closes b.
func New(b *blob.Bucket, opts Options) *Store {
	s := &Store{b: b, name: opts.Name, fail: opts.Failpoint, log: opts.Logger}
	if s.name == "" {
		s.name = "blob bucket"
	}
	if s.fail == nil {
		s.fail = func(string) {}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var fi os.FileInfo
	s.scanAll = b.As(&fi)
	return s
}

// Open opens the bucket rawURL names (see the package documentation for
// the URLs accepted) and returns a store over it. It does not contact the
// bucket: call Probe to check it can be used.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "file" {
		q := u.Query()
		for k, v := range map[string]string{"create_dir": "1", "metadata": "skip", "no_tmp_dir": "1", "dir_file_mode": "0750"} {
			if _, set := q[k]; !set {
				q.Set(k, v)
			}
		}
		u.RawQuery = q.Encode()
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("blobstore: opening %s: %w", describe(u), err)
	}
	if opts.Name == "" {
		opts.Name = describe(u)
	}
	s := New(b, opts)
	if u.Scheme == "file" {
		// fileblob recreates missing directories on write; remember the
		// one opened, as LocalFileStore does, so that a deleted or
		// replaced directory (an unmounted volume) is noticed.
		var fi os.FileInfo
		if !b.As(&fi) {
			b.Close()
			return nil, fmt.Errorf("blobstore: %s: not a directory bucket", s.name)
		}
		dir := fileDir(u)
		if s.root, err = os.Open(dir); err == nil {
			s.rootInfo, err = s.root.Stat()
		}
		if err != nil || !os.SameFile(fi, s.rootInfo) {
			s.Close()
			return nil, fmt.Errorf("blobstore: %s: the directory changed while opening it (%v)", s.name, err)
		}
	}
	return s, nil
}

// CheckURL reports whether Open could accept rawURL, without opening
// anything: a scheme it supports, a bucket or directory, and no
// credentials. (The drivers' query parameters are checked by Open.) Its
// errors never repeat the URL.
func CheckURL(rawURL string) error {
	_, err := parseURL(rawURL)
	return err
}

func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url's error repeats the URL, which may hold secrets.
		return nil, errors.New("blobstore: the URL does not parse; want s3://bucket?..., file:///dir or mem://")
	}
	if u.User != nil {
		return nil, fmt.Errorf("blobstore: %s: credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or use a profile or role)", u.Scheme)
	}
	switch u.Scheme {
	case "s3":
		if u.Host == "" {
			return nil, errors.New("blobstore: s3 URL without a bucket; want s3://bucket?region=REGION")
		}
	case "file":
		if u.Path == "" || u.Path == "/" && u.Host == "" {
			return nil, errors.New("blobstore: file URL without a directory; want file:///absolute/dir")
		}
	case "mem":
	default:
		return nil, fmt.Errorf("blobstore: unsupported URL scheme %q; want s3://, file:// or mem://", u.Scheme)
	}
	return u, nil
}

// fileDir is the directory a file URL names, as fileblob reads it.
func fileDir(u *url.URL) string {
	if u.Host == "." {
		return strings.TrimPrefix(u.Path, "/")
	}
	return u.Path
}

// checkRoot fails with runstore.ErrUnavailable when a file:// store's
// directory is gone or is no longer the directory the store opened.
func (s *Store) checkRoot() error {
	if s.root == nil {
		return nil
	}
	st, err := os.Stat(s.root.Name())
	if err != nil {
		return fmt.Errorf("%w: blobstore %s: %v", runstore.ErrUnavailable, s.name, err)
	}
	if !os.SameFile(st, s.rootInfo) {
		return fmt.Errorf("%w: blobstore %s: the directory was replaced", runstore.ErrUnavailable, s.name)
	}
	return nil
}

// describe names the bucket u opens without anything secret: the scheme,
// bucket or directory, prefix and endpoint.
func describe(u *url.URL) string {
	q := u.Query()
	var b strings.Builder
	b.WriteString(u.Scheme + "://")
	switch u.Scheme {
	case "file":
		b.WriteString(u.Host + u.Path)
	case "s3":
		b.WriteString(u.Host)
	}
	if p := q.Get("prefix"); p != "" {
		b.WriteString(" prefix " + p)
	}
	if e := q.Get("endpoint"); e != "" {
		if eu, err := url.Parse(e); err == nil && eu.Host != "" {
			e = eu.Scheme + "://" + eu.Host
		} else {
			e = "(unparsable)"
		}
		b.WriteString(" at " + e)
	}
	return b.String()
}

// String names the store, as in its errors and the server's health report.
func (s *Store) String() string { return s.name }

// Bucket returns the store's bucket.
func (s *Store) Bucket() *blob.Bucket { return s.b }

// Close closes the bucket. The store must not be used afterwards.
func (s *Store) Close() error {
	err := s.b.Close()
	if s.root != nil {
		if cerr := s.root.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// ObjectKey returns the bucket key that holds the contents of storage key
// key: <first two digits>/<key>. key must pass runstore.CheckStorageKey.
func ObjectKey(key string) string { return key[:2] + "/" + key }

// storageKey returns the storage key an object key holds, if it is one.
func storageKey(obj string) (string, bool) {
	dir, key, ok := strings.Cut(obj, "/")
	if !ok || runstore.CheckStorageKey(key) != nil || dir != key[:2] {
		return "", false
	}
	return key, true
}

// isTemp reports whether obj is a temporary object: a key under TempPrefix,
// or on file:// the temporary file of a copy killed before its rename,
// <object>.<hex>.tmp.
func (s *Store) isTemp(obj string) bool {
	if strings.HasPrefix(obj, TempPrefix) {
		return true
	}
	if !s.scanAll {
		return false
	}
	base, ok := strings.CutSuffix(obj, ".tmp")
	if !ok {
		return false
	}
	i := strings.LastIndexByte(base, '.')
	if i < 0 || i == len(base)-1 {
		return false
	}
	for _, c := range base[i+1:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	_, ok = storageKey(base[:i])
	return ok
}

// wrap maps a bucket error: the caller's cancelled context stays
// recognisable, a missing object is runstore.ErrNotFound, and anything else
// (the bucket missing, refused access, the server unreachable) is
// runstore.ErrUnavailable.
func (s *Store) wrap(ctx context.Context, op, key string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("blobstore %s: %s %s: %w", s.name, op, key, cerr)
	}
	if s.missing(ctx, err) {
		return fmt.Errorf("%w: file contents %q", runstore.ErrNotFound, key)
	}
	return fmt.Errorf("%w: blobstore %s: %s %s: %w", runstore.ErrUnavailable, s.name, op, key, err)
}

// missing reports whether err says that an object is missing from a
// bucket that exists. S3 answers a HEAD request (Stat, and Delete, which
// gocloud starts with one) for any key of a missing bucket with a bare 404,
// so a not-found error is trusted only once the bucket is seen to exist.
func (s *Store) missing(ctx context.Context, err error) bool {
	if gcerrors.Code(err) != gcerrors.NotFound || s.noBucket(err) {
		return false
	}
	if s.root != nil {
		return s.checkRoot() == nil
	}
	ok, aerr := s.b.IsAccessible(ctx)
	return aerr == nil && ok
}

// noBucket reports an S3 error saying the bucket itself does not exist:
// the store is gone, not the object.
func (s *Store) noBucket(err error) bool {
	var ae smithy.APIError
	return s.b.ErrorAs(err, &ae) && ae.ErrorCode() == "NoSuchBucket"
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// readErr remembers the error of the reader Put consumes, to tell the
// caller's failing upload from the store's failure.
type readErr struct {
	ctx context.Context
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return 0, err
	}
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// Put implements runstore.FileStore: it streams r to a temporary key while
// hashing it, copies the object to its content key and deletes the
// temporary key. On error nothing is left under a content key, and the
// temporary object is deleted (or, if even that fails, left for the sweep).
func (s *Store) Put(ctx context.Context, r io.Reader) (runstore.Blob, error) {
	if err := ctx.Err(); err != nil {
		return runstore.Blob{}, err
	}
	if err := s.checkRoot(); err != nil {
		return runstore.Blob{}, err
	}
	tmp := TempPrefix + randomHex()
	// Cancelling wctx before Close is how a gocloud write is aborted.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Uploads arrive at the client's pace: two S3 parts in flight (8 MiB
	// each) keep one uploading while the next fills, without the five
	// parts' worth of buffers per upload of the SDK's default (a 48 MiB
	// Put peaked 66 MiB above its data with five, 42 with two).
	w, err := s.b.NewWriter(wctx, tmp, &blob.WriterOptions{ContentType: contentType, MaxConcurrency: 2})
	if err != nil {
		return runstore.Blob{}, s.wrap(ctx, "writing", tmp, err)
	}
	h := sha256.New()
	src := &readErr{ctx: ctx, r: r}
	n, err := io.Copy(w, io.TeeReader(src, h))
	if err != nil {
		cancel()
		_ = w.Close()
		s.removeTemp(ctx, tmp)
		if src.err != nil {
			return runstore.Blob{}, fmt.Errorf("blobstore: reading contents: %w", src.err)
		}
		return runstore.Blob{}, s.wrap(ctx, "writing", tmp, err)
	}
	if err := w.Close(); err != nil {
		s.removeTemp(ctx, tmp)
		return runstore.Blob{}, s.wrap(ctx, "writing", tmp, err)
	}
	key := hex.EncodeToString(h.Sum(nil))
	s.fail(FailpointTempWritten)
	if err := s.b.Copy(ctx, ObjectKey(key), tmp, nil); err != nil {
		s.removeTemp(ctx, tmp)
		if ctx.Err() == nil && s.missing(ctx, err) {
			// Only a sweep removes temporary objects, and only old ones.
			return runstore.Blob{}, fmt.Errorf("%w: blobstore %s: temporary object %s vanished before it was copied (swept after %v?)",
				runstore.ErrUnavailable, s.name, tmp, runstore.MinUnreferencedAge)
		}
		return runstore.Blob{}, s.wrap(ctx, "copying to", key, err)
	}
	s.fail(FailpointCopied)
	if err := s.b.Delete(ctx, tmp); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		// The contents are stored; the temporary copy is only litter.
		s.log.Warn("blobstore: temporary object left for the sweep", "store", s.name, "key", tmp, "err", err)
	}
	s.fail(FailpointTempDeleted)
	return runstore.Blob{Key: key, Size: n, SHA256: key}, nil
}

// removeTemp deletes a failed Put's temporary object, even when ctx was
// cancelled; if that fails the sweep removes it later.
func (s *Store) removeTemp(ctx context.Context, tmp string) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := s.b.Delete(cctx, tmp); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		s.log.Warn("blobstore: temporary object of a failed write left for the sweep", "store", s.name, "key", tmp, "err", err)
	}
}

// Open implements runstore.FileStore. The contents are read as the caller
// reads; runstore.OpenFile checks their size and SHA-256.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := runstore.CheckStorageKey(key); err != nil {
		return nil, err
	}
	r, err := s.b.NewReader(ctx, ObjectKey(key), nil)
	if err != nil {
		return nil, s.wrap(ctx, "opening", key, err)
	}
	return r, nil
}

// Stat implements runstore.FileStore. ModTime is the store's: an object
// store's server clock, a file's modification time.
func (s *Store) Stat(ctx context.Context, key string) (runstore.BlobInfo, error) {
	if err := runstore.CheckStorageKey(key); err != nil {
		return runstore.BlobInfo{}, err
	}
	a, err := s.b.Attributes(ctx, ObjectKey(key))
	if err != nil {
		return runstore.BlobInfo{}, s.wrap(ctx, "reading attributes of", key, err)
	}
	return runstore.BlobInfo{Key: key, Size: a.Size, ModTime: a.ModTime}, nil
}

// Delete implements runstore.FileStore.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := runstore.CheckStorageKey(key); err != nil {
		return err
	}
	err := s.b.Delete(ctx, ObjectKey(key))
	if err == nil {
		return nil
	}
	if err = s.wrap(ctx, "deleting", key, err); errors.Is(err, runstore.ErrNotFound) {
		return nil
	}
	return err
}

// List implements runstore.FileStore. Temporary objects, and objects that
// are not contents (in a bucket shared without a prefix), are not listed.
func (s *Store) List(ctx context.Context, fn func(runstore.BlobInfo) error) error {
	if err := s.checkRoot(); err != nil {
		return err
	}
	it := s.b.List(nil)
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return s.wrap(ctx, "listing", "", err)
		}
		key, ok := storageKey(obj.Key)
		if !ok || obj.IsDir {
			continue
		}
		if err := fn(runstore.BlobInfo{Key: key, Size: obj.Size, ModTime: obj.ModTime}); err != nil {
			return err
		}
	}
}

// Probe implements runstore.FileStore: it writes a probe object under
// TempPrefix, reads it back, compares and deletes it. Any failure matches
// runstore.ErrUnavailable.
func (s *Store) Probe(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.checkRoot(); err != nil {
		return err
	}
	key := TempPrefix + "probe-" + randomHex()
	want := []byte("dynoai file store probe " + key)
	fail := func(step string, err error) error {
		return fmt.Errorf("%w: blobstore %s: probe %s: %v", runstore.ErrUnavailable, s.name, step, err)
	}
	if err := s.b.WriteAll(ctx, key, want, &blob.WriterOptions{ContentType: contentType}); err != nil {
		s.removeTemp(ctx, key)
		return fail("write", err)
	}
	got, err := s.b.ReadAll(ctx, key)
	if err == nil && !bytes.Equal(got, want) {
		err = errors.New("read back different bytes")
	}
	if err != nil {
		s.removeTemp(ctx, key)
		return fail("read", err)
	}
	if err := s.b.Delete(ctx, key); err != nil {
		return fail("delete", err)
	}
	// The directory may have been replaced while probing.
	return s.checkRoot()
}

// SweepTemp implements runstore.TempSweeper: it deletes the temporary
// objects (see TempPrefix) last written before cutoff. A temporary object
// becomes visible only once its upload completed, and Put copies and
// deletes it at once, so only a Put stalled for the whole grace period can
// lose its temporary object, and then its copy fails: Put returns an error
// and stores nothing.
func (s *Store) SweepTemp(ctx context.Context, cutoff time.Time) (runstore.TempSweep, error) {
	var st runstore.TempSweep
	if err := s.checkRoot(); err != nil {
		return st, err
	}
	opts := &blob.ListOptions{Prefix: TempPrefix}
	if s.scanAll {
		opts = nil
	}
	it := s.b.List(opts)
	var errs []error
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, s.wrap(ctx, "listing", TempPrefix, err)
		}
		if obj.IsDir || !s.isTemp(obj.Key) || !obj.ModTime.Before(cutoff) {
			continue
		}
		if err := s.b.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			errs = append(errs, s.wrap(ctx, "deleting", obj.Key, err))
			continue
		}
		st.Removed++
		st.Bytes += obj.Size
	}
	return st, errors.Join(errs...)
}
