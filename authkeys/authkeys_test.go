package authkeys

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Test keys of MinKeyLen characters and more.
var (
	ka = K("alpha")
	kb = K("bravo")
	kc = K("charlie")
)

func keysOf(entries []Entry) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Key)
	}
	return out
}

func TestParseFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"BOM", "\uFEFF" + ka + "\n" + kb + "\n", []string{ka, kb}},
		{"CRLF", ka + "\r\n" + kb + "\r\n", []string{ka, kb}},
		{"indented comment is a comment", "  # x\n\t" + ka + "  \n", []string{ka}},
		{"blank lines of spaces", "\n   \n\t\n" + ka + "\n\n", []string{ka}},
		{"identical repeats are harmless", ka + "\n" + ka + "\n", []string{ka, ka}},
		{"hash inside a key", "abcd#efgh-ijkl-mnop-qrstu\n", []string{"abcd#efgh-ijkl-mnop-qrstu"}},
		{"framed", FileHeader + "\n" + ka + "\n\n" + FileTrailer + "\n\n", []string{ka}},
		{"framed, trailer without newline", FileHeader + "\n" + ka + "\n" + FileTrailer, []string{ka}},
		{"an end line in an unframed file is a comment", ka + "\n" + FileTrailer + "\n" + kb + "\n", []string{ka, kb}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFile([]byte(tc.in))
			require.NoError(t, err)
			assert.Equal(t, tc.want, keysOf(got))
		})
	}
}

func TestParseEntryAttributes(t *testing.T) {
	e, err := ParseEntry(ka + "  tenant=shop-7\tscopes=read+Analyze")
	require.NoError(t, err)
	assert.Equal(t, Entry{Key: ka, Tenant: "shop-7", Scopes: ScopeRead | ScopeAnalyze}, e)
	assert.Equal(t, ka+" tenant=shop-7 scopes=read+analyze", e.String())
	e, err = ParseEntry(ka + " scopes=admin")
	require.NoError(t, err)
	assert.Equal(t, ScopeAdmin, e.Scopes)
	assert.Empty(t, e.Tenant)
	ident := e.identity(IDOf(ka))
	assert.Equal(t, OwnTenant(IDOf(ka)), ident.Tenant)
	assert.True(t, ident.Can(ScopeApply|ScopeRead), "admin has every scope")
	assert.Equal(t, DefaultScopes, Entry{Key: ka}.identity(IDOf(ka)).Scopes)

	for _, tc := range []struct{ in, want string }{
		{ka + " tenant=", "tenant \"\""},
		{ka + " tenant=-x", "tenant \"-x\""},
		{ka + " tenant=a tenant=b", "tenant given twice"},
		{ka + " scopes=read+write", `unknown scope "write"`},
		{ka + " scopes=read+read", "given twice"},
		{ka + " scopes=", "empty scope list"},
		{ka + " owner=me", "want tenant=<name> or scopes="},
		{ka + " # comment", "want tenant=<name> or scopes="},
	} {
		_, err := ParseEntry(tc.in)
		var pe *ParseError
		require.ErrorAs(t, err, &pe, tc.in)
		assert.Contains(t, err.Error(), tc.want, tc.in)
		assert.NotContains(t, err.Error(), ka, "the key is never in an error")
	}
}

func TestParseFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name               string
		in                 string
		line, col, off     int
		char               rune
		secretNotInMessage string
	}{
		{"inner space", ka + "\n  key-secret-1-" + strings.Repeat("z", 20) + " secret1\n", 2, 37, 61, 0, "secret1"},
		{"control char", ka + "\nab\x01cd\n", 2, 3, 27, 1, "abcd"},
		{"non-ASCII", ka + "\nclé9" + strings.Repeat("z", 20) + "\n", 2, 3, 27, 'é', "clé9"},
		{"invalid UTF-8", "\xff\xfe\n", 1, 1, 0, 0xFFFD, ""},
		{"BOM in the middle", ka + "\n\uFEFF" + kb + "\n", 2, 1, 25, '\uFEFF', ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile([]byte(tc.in))
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.line, pe.Line, "line")
			assert.Equal(t, tc.col, pe.Column, "column")
			assert.Equal(t, tc.off, pe.Offset, "offset")
			assert.Equal(t, tc.char, pe.Char)
			assert.Contains(t, err.Error(), "line ")
			if tc.secretNotInMessage != "" {
				assert.NotContains(t, err.Error(), tc.secretNotInMessage)
			}
		})
	}
	_, err := ParseFile(make([]byte, MaxFileBytes+1))
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, pe.Reason, "larger than")
}

// TestKeysFileShortKeyRefused: a keys file holding "x" made "x" a valid
// key. Keys shorter than MinKeyLen are refused at load, with the line.
func TestKeysFileShortKeyRefused(t *testing.T) {
	for _, in := range []string{"x\n", ka + "\n" + "short-key-of-23-chars--\n"} {
		_, err := ParseFile([]byte(in))
		var pe *ParseError
		require.ErrorAs(t, err, &pe, "%q", in)
		assert.Contains(t, err.Error(), "too short")
		assert.Equal(t, strings.Count(in, "\n"), pe.Line)
	}
	p := writeFile(t, t.TempDir(), "keys.txt", "x\n")
	_, err := OpenFile(p, FileOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), p+": line 1, column 1")
	_, err = LoadEnv(envMap{EnvEnabled: "true", EnvKeys: ka + ",x"}.lookup, FileOptions{})
	require.ErrorContains(t, err, "entry 2")
	_, err = NewMemory(Entry{Key: "x"})
	require.ErrorContains(t, err, "too short")
	_, err = ParseFile([]byte(strings.Repeat("k", MinKeyLen) + "\n"))
	require.NoError(t, err, "exactly MinKeyLen is enough")
}

// TestKeysFileCutOff: a keys file cut off mid-key was applied, making a
// prefix of a key valid. A file is applied only when it parses whole: its
// last line ends with a newline, and a framed file ends with its trailer.
func TestKeysFileCutOff(t *testing.T) {
	whole := FileHeader + "\n" + ka + " tenant=shop-1\n" + kb + "\n" + FileTrailer + "\n"
	got, err := ParseFile([]byte(whole))
	require.NoError(t, err)
	require.Len(t, got, 2)
	for cut := 1; cut < len(whole)-1; cut++ {
		prefix := whole[:cut]
		if strings.TrimSpace(prefix) == "" {
			continue
		}
		_, err := ParseFile([]byte(prefix))
		require.Error(t, err, "cut at %d: %q was accepted", cut, prefix)
	}
	// Unframed (a bare list as before): cut inside a line is refused.
	bare := ka + "\n" + kb + "\n"
	for cut := len(ka) + 1 + MinKeyLen; cut < len(bare)-1; cut++ {
		_, err := ParseFile([]byte(bare[:cut]))
		require.ErrorContains(t, err, "cut off", "cut at %d", cut)
	}
	// And a store never applies a cut-off rewrite.
	dir := t.TempDir()
	p := writeFile(t, dir, "keys.txt", whole)
	f, err := OpenFile(p, FileOptions{})
	require.NoError(t, err)
	writeFile(t, dir, "keys.txt", whole[:len(whole)-8])
	_, err = f.Reload(context.Background())
	require.Error(t, err)
	assert.True(t, valid(t, f, kb), "the previous keys stay in force")
}

func TestParseFileRepeatsWithOtherScopes(t *testing.T) {
	_, err := ParseFile([]byte(ka + " scopes=read\n" + kb + "\n" + ka + " scopes=admin\n"))
	require.ErrorContains(t, err, "line 3 repeats the key of line 1")
	assert.NotContains(t, err.Error(), ka)
}

func TestParseList(t *testing.T) {
	got, err := ParseList(" " + ka + " ,, " + kb + " tenant=t2 scopes=read,\t" + kc + "\t,")
	require.NoError(t, err)
	assert.Equal(t, []Entry{{Key: ka}, {Key: kb, Tenant: "t2", Scopes: ScopeRead}, {Key: kc}}, got)
	got, err = ParseList("")
	require.NoError(t, err)
	assert.Empty(t, got)

	_, err = ParseList(ka + ", b\x012")
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 2, pe.Entry)
	assert.Equal(t, len(ka)+3, pe.Offset)
	assert.Contains(t, err.Error(), "entry 2")
}

func TestKeyID(t *testing.T) {
	k := Generate()
	id := IDOf(k)
	assert.Regexp(t, `^[0-9a-f]{12}$`, string(id))
	assert.Equal(t, id, IDOf(k), "stable")
	assert.NotEqual(t, id, IDOf(Generate()))
	// The id is not a prefix of the digest stores compare.
	d := DigestOf(k)
	assert.NotEqual(t, hex.EncodeToString(d[:6]), string(id))
	for i := 0; i+4 <= len(k); i++ {
		assert.NotContains(t, string(id), k[i:i+4], "raw key characters in the id")
	}
}

func TestMemoryAddRemove(t *testing.T) {
	m := &Memory{}
	require.NoError(t, m.Add(Entry{Key: ka}, Entry{Key: kb, Tenant: "t"}, Entry{Key: ka}))
	assert.Equal(t, 2, m.Len())
	require.Error(t, m.Add(Entry{Key: kc}, Entry{Key: "short"}))
	assert.Equal(t, 2, m.Len(), "a refused Add changes nothing")
	assert.True(t, m.Remove(IDOf(ka)))
	assert.False(t, m.Remove(IDOf(ka)))
	assert.False(t, valid(t, m, ka))
	id, err := m.Verify(context.Background(), kb)
	require.NoError(t, err)
	assert.Equal(t, "t", id.Tenant)
}

type failingStore struct{ err error }

func (f failingStore) Verify(context.Context, string) (Identity, error) { return Identity{}, f.err }
func (failingStore) Len() int                                           { return 1 }

func TestMulti(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("backend down")
	m := NewMulti(mem(t, ka), nil, failingStore{boom}, mem(t))
	id, err := m.Verify(ctx, ka)
	require.NoError(t, err, "a match wins over another store's failure")
	assert.Equal(t, IDOf(ka), id.ID)
	_, err = m.Verify(ctx, kc)
	assert.ErrorIs(t, err, boom)
	_, err = NewMulti(mem(t, ka), failingStore{ErrInvalid}).Verify(ctx, kc)
	assert.ErrorIs(t, err, ErrInvalid)
	assert.NotErrorIs(t, err, ErrNoKeys)
	assert.Len(t, m.Stores(), 3)
}

func TestFileCheckAndWatch(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "keys.txt", K("aaaa")+"\n")
	now := time.Now()
	clock := func() time.Time { return now }
	var logs bytes.Buffer
	f, err := OpenFile(p, FileOptions{PollInterval: 10 * time.Millisecond, Now: clock,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	require.NoError(t, err)
	ctx := context.Background()

	// Unchanged file whose mtime is recent: contents are re-hashed, nothing swapped.
	changed, err := f.Check(ctx)
	require.NoError(t, err)
	assert.False(t, changed)

	// Same size, same mtime (a rewrite within one timestamp tick): caught
	// because the mtime is still too recent to trust.
	st, err := os.Stat(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(p, []byte(K("bbbb")+"\n"), 0o600))
	require.NoError(t, os.Chtimes(p, st.ModTime(), st.ModTime()))
	changed, err = f.Check(ctx)
	require.NoError(t, err)
	assert.False(t, changed, "new contents apply only once they read the same twice")
	assert.True(t, valid(t, f, K("aaaa")))
	changed, err = f.Check(ctx)
	require.NoError(t, err)
	assert.True(t, changed)
	assert.True(t, valid(t, f, K("bbbb")))
	assert.False(t, valid(t, f, K("aaaa")))

	// Once the mtime has aged, an unchanged stat means no read at all.
	now = now.Add(time.Hour)
	changed, err = f.Check(ctx)
	require.NoError(t, err)
	assert.False(t, changed)

	// A malformed rewrite keeps the old keys and reports where.
	require.NoError(t, os.WriteFile(p, []byte(K("cccc")+"\nbad key\n"), 0o600))
	_, err = f.Check(ctx)
	require.NoError(t, err)
	_, err = f.Check(ctx)
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, p, pe.Path)
	assert.Equal(t, 2, pe.Line)
	assert.True(t, valid(t, f, K("bbbb")))
	assert.False(t, valid(t, f, K("cccc")))

	// A deleted file keeps the old keys too.
	require.NoError(t, os.Remove(p))
	_, err = f.Check(ctx)
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.True(t, valid(t, f, K("bbbb")))

	// Replacing the file by rename is picked up by Watch.
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Watch(wctx) }()
	tmp := writeFile(t, dir, "keys.tmp", K("dddd")+"\n"+K("eeee")+"\n")
	require.NoError(t, os.Rename(tmp, p))
	require.Eventually(t, func() bool { return valid(t, f, K("eeee")) }, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Equal(t, 2, f.Len())
	assert.Contains(t, logs.String(), `"event":"keys_reloaded"`)
	assert.NotContains(t, logs.String(), K("eeee"))
}

func TestOpenFileErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenFile(filepath.Join(dir, "missing"), FileOptions{})
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = OpenFile(dir, FileOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a regular file")
	p := writeFile(t, dir, "k", ka+"\n"+kb+" ok\n")
	_, err = OpenFile(p, FileOptions{})
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, err.Error(), p+": line 2, column 26")
}

func TestMiddlewareDetails(t *testing.T) {
	store := mem(t, K("key1"))
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	type ridKey struct{}
	var gotID Identity
	h := Middleware(store, Options{
		Logger:    logger,
		RequestID: func(ctx context.Context) string { s, _ := ctx.Value(ridKey{}).(string); return s },
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotID, _ = IdentityFromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	serve := func(hdr http.Header) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/api/apply", nil)
		req = req.WithContext(context.WithValue(req.Context(), ridKey{}, "abc123def456"))
		req.Header = hdr
		req.Header.Set("User-Agent", "tester/1")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, tc := range []struct {
		name   string
		hdr    http.Header
		status int
		code   string
		event  string
	}{
		{"missing", http.Header{}, 401, CodeAuthRequired, "auth_missing"},
		{"bearer ok", http.Header{"Authorization": {"Bearer " + K("key1")}}, 204, "", "auth_ok"},
		{"bearer lower-case scheme", http.Header{"Authorization": {"bearer " + K("key1")}}, 204, "", "auth_ok"},
		{"bearer wrong", http.Header{"Authorization": {"Bearer " + K("key1") + "x"}}, 403, CodeInvalidAPIKey, "auth_invalid"},
		{"bearer empty", http.Header{"Authorization": {"Bearer "}}, 401, CodeAuthRequired, "auth_missing"},
		{"basic is not a key", http.Header{"Authorization": {"Basic a2V5MTo="}}, 401, CodeAuthRequired, "auth_missing"},
		{"X-API-Key wins over bearer", http.Header{"X-Api-Key": {"nope99"}, "Authorization": {"Bearer " + K("key1")}}, 403, CodeInvalidAPIKey, "auth_invalid"},
		{"two X-API-Key headers", http.Header{"X-Api-Key": {K("key1"), K("key1")}}, 403, CodeInvalidAPIKey, "auth_invalid"},
		{"untrimmed key", http.Header{"X-Api-Key": {" " + K("key1") + " "}}, 403, CodeInvalidAPIKey, "auth_invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			gotID = Identity{}
			rec := serve(tc.hdr)
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			var entry map[string]any
			require.NoError(t, json.Unmarshal(logs.Bytes(), &entry), logs.String())
			assert.Equal(t, tc.event, entry["event"])
			assert.Equal(t, "abc123def456", entry["request_id"])
			assert.Equal(t, "POST", entry["method"])
			assert.Equal(t, "/api/apply", entry["path"])
			assert.Equal(t, "192.0.2.1", entry["remote_ip"])
			assert.Equal(t, "tester/1", entry["user_agent"])
			assert.NotContains(t, logs.String(), K("key1"), "raw key characters logged")
			assert.NotContains(t, logs.String(), "nope99")
			if tc.code == "" {
				assert.Equal(t, IDOf(K("key1")), gotID.ID)
				assert.Equal(t, string(IDOf(K("key1"))), entry["key_id"])
				assert.Equal(t, OwnTenant(gotID.ID), entry["tenant"])
				return
			}
			assert.Empty(t, gotID)
			assert.NotContains(t, entry, "key_id")
			e := envelope(t, rec)
			assert.Equal(t, tc.code, e.Code)
			assert.Equal(t, "abc123def456", e.RequestID)
		})
	}

	t.Run("nil store and empty store fail closed", func(t *testing.T) {
		for _, s := range []KeyStore{nil, mem(t)} {
			logs.Reset()
			h := Middleware(s, Options{Logger: logger})(successHandler)
			rec := do(t, h, http.MethodGet, map[string]string{HeaderAPIKey: K("anything")})
			assert.Equal(t, http.StatusForbidden, rec.Code)
			assert.Contains(t, logs.String(), `"event":"auth_no_keys"`)
			assert.Contains(t, logs.String(), `"level":"ERROR"`)
			rec = do(t, h, http.MethodGet, nil)
			assert.Equal(t, http.StatusUnauthorized, rec.Code)
		}
	})
	t.Run("custom error writer and remote ip", func(t *testing.T) {
		var got []any
		h := Middleware(store, Options{
			RemoteIP: func(*http.Request) string { return "203.0.113.9" },
			Logger:   logger,
			WriteError: func(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
				got = append(got, status, code)
				w.WriteHeader(status)
			},
		})(successHandler)
		logs.Reset()
		rec := do(t, h, http.MethodGet, map[string]string{HeaderAPIKey: K("bad")})
		assert.Equal(t, http.StatusForbidden, rec.Code)
		assert.Equal(t, []any{403, CodeInvalidAPIKey}, got)
		assert.Contains(t, logs.String(), `"remote_ip":"203.0.113.9"`)
	})
}

// TestRotationInFlight rotates keys by rewriting the keys file while
// requests are in flight: a key present in every version is never refused,
// a retired key is refused once the rotation is seen, and no request sees a
// half-built set. Run with -race.
func TestRotationInFlight(t *testing.T) {
	dir := t.TempDir()
	stable, old, next := Generate(), Generate(), Generate()
	p := writeFile(t, dir, "keys.txt", stable+"\n"+old+"\n")
	f, err := OpenFile(p, FileOptions{PollInterval: 2 * time.Millisecond})
	require.NoError(t, err)
	srv := httptest.NewServer(Middleware(f, Options{})(successHandler))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); _ = f.Watch(ctx) }()

	status := func(key string) int {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL, nil)
		req.Header.Set(HeaderAPIKey, key)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	var stableFailures, bad, checks atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if status(stable) != http.StatusOK {
					stableFailures.Add(1)
				}
				if s := status(Generate()); s != http.StatusForbidden {
					bad.Add(1)
				}
				checks.Add(1)
			}
		})
	}
	// Rotate: add next, then retire old; by rename (atomic) and by in-place
	// rewrite, each observed by the watcher or an explicit Reload.
	tmp := writeFile(t, dir, "keys.tmp", stable+"\n"+old+"\n"+next+"\n")
	require.NoError(t, os.Rename(tmp, p))
	require.Eventually(t, func() bool { return status(next) == http.StatusOK }, 5*time.Second, time.Millisecond)
	writeFile(t, dir, "keys.txt", "# rotated\n"+stable+"\n"+next+"\n")
	n, err := f.Reload(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, http.StatusForbidden, status(old))
	assert.Equal(t, http.StatusOK, status(next))
	// A few more rounds of checks after the last rotation, then stop.
	after := checks.Load()
	require.Eventually(t, func() bool { return checks.Load() >= after+20 }, 30*time.Second, time.Millisecond)
	close(stop)
	wg.Wait()
	cancel()
	<-watchDone
	assert.Zero(t, stableFailures.Load(), "the stable key was refused during rotation")
	assert.Zero(t, bad.Load(), "a random key was accepted")
}

// TestCheckNeverAppliesHalfWrittenFile: contents that change between two
// checks (a writer still at work) are not applied until they settle.
func TestCheckNeverAppliesHalfWrittenFile(t *testing.T) {
	dir := t.TempDir()
	full := Generate()
	p := writeFile(t, dir, "keys.txt", K("first1")+"\n")
	f, err := OpenFile(p, FileOptions{PollInterval: time.Hour})
	require.NoError(t, err)
	ctx := context.Background()
	for i := 8; i < len(full); i += 9 { // the writer appends piece by piece
		writeFile(t, dir, "keys.txt", K("first1")+"\n"+full[:i])
		changed, err := f.Check(ctx)
		require.NoError(t, err)
		assert.False(t, changed)
		assert.False(t, valid(t, f, full[:i]), "a cut-short key became valid")
	}
	writeFile(t, dir, "keys.txt", K("first1")+"\n"+full+"\n")
	for _, want := range []bool{false, true, false} {
		changed, err := f.Check(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, changed)
	}
	assert.True(t, valid(t, f, full))
	assert.Equal(t, 2, f.Len())
}

// TestMatchEveryPosition checks the branch-free comparison for a match at
// every position and for digests differing in a single bit of each word.
func TestMatchEveryPosition(t *testing.T) {
	keys, err := GenerateN(40)
	require.NoError(t, err)
	entries := make([]Entry, len(keys))
	for i, k := range keys {
		entries[i] = Entry{Key: k}
	}
	s := newKeySet(entries)
	for i, k := range keys {
		d := DigestOf(k)
		idx, ok := s.match(&d)
		require.True(t, ok)
		require.Equal(t, i, idx)
		for bit := 0; bit < 256; bit += 7 {
			e := d
			e[bit/8] ^= 1 << (bit % 8)
			_, ok := s.match(&e)
			require.False(t, ok, "bit %d", bit)
		}
	}
	var zero Digest
	_, ok := s.match(&zero)
	assert.False(t, ok)
	_, ok = (&keySet{}).match(&zero)
	assert.False(t, ok)
}

func TestMaxKeyLen(t *testing.T) {
	long := strings.Repeat("k", MaxKeyLen+1)
	_, err := ParseFile([]byte(ka + "\n  " + long + "\n"))
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 2, pe.Line)
	assert.Equal(t, 3, pe.Column)
	assert.Equal(t, len(ka)+3, pe.Offset)
	assert.Contains(t, err.Error(), "longer than 512 bytes")
	_, err = ParseList(ka + "," + long)
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 2, pe.Entry)

	ok := strings.Repeat("k", MaxKeyLen)
	for _, s := range []KeyStore{mem(t, ok), NewMulti(mem(t, ok))} {
		assert.True(t, valid(t, s, ok))
		_, err = s.Verify(context.Background(), long)
		assert.ErrorIs(t, err, ErrInvalid)
		assert.NotErrorIs(t, err, ErrNoKeys)
	}
	_, err = NewMulti().Verify(context.Background(), long)
	assert.ErrorIs(t, err, ErrNoKeys)
}

func TestLoadEnvLogsFailClosed(t *testing.T) {
	var logs bytes.Buffer
	s, err := LoadEnv(envMap{EnvEnabled: "on"}.lookup, FileOptions{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	require.NoError(t, err)
	assert.True(t, s.Enabled)
	assert.Contains(t, logs.String(), `"level":"ERROR"`)
	assert.Contains(t, logs.String(), "no keys configured")

	_, err = LoadEnv(envMap{EnvKeys: "a1,b 2"}.lookup, FileOptions{})
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, err.Error(), "environment variable API_KEYS")
}

func TestSetupWatch(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "keys.txt", K("file1")+"\n")
	s, err := LoadEnv(envMap{EnvEnabled: "true", EnvKeys: K("env1"), EnvKeysFile: p}.lookup,
		FileOptions{PollInterval: 2 * time.Millisecond})
	require.NoError(t, err)
	require.NotNil(t, s.File)
	assert.Equal(t, p, s.File.Path())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Store.Watch(ctx) }()
	writeFile(t, dir, "keys.txt", K("file1")+"\n"+K("file2")+"\n")
	require.Eventually(t, func() bool { return valid(t, s.Store, K("file2")) }, 5*time.Second, time.Millisecond)
	assert.True(t, valid(t, s.Store, K("env1")))
	n, err := s.Store.Reload(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

// TestCheckIgnoresTruncatedFile: the zero-byte state of an in-place rewrite
// never revokes the keys, however many checks see it; Reload or a file of
// comments does.
func TestCheckIgnoresTruncatedFile(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "keys.txt", K("key1")+"\n")
	f, err := OpenFile(p, FileOptions{PollInterval: time.Hour})
	require.NoError(t, err)
	ctx := context.Background()
	writeFile(t, dir, "keys.txt", "")
	for range 3 {
		changed, err := f.Check(ctx)
		require.ErrorIs(t, err, ErrEmptyFile)
		assert.False(t, changed)
		assert.True(t, valid(t, f, K("key1")))
	}
	writeFile(t, dir, "keys.txt", "# all keys revoked\n")
	for _, want := range []bool{false, true} {
		changed, err := f.Check(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, changed)
	}
	assert.Equal(t, 0, f.Len())
	writeFile(t, dir, "keys.txt", K("key2")+"\n")
	_, err = f.Reload(ctx)
	require.NoError(t, err)
	writeFile(t, dir, "keys.txt", "")
	n, err := f.Reload(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, n, "an explicit Reload applies an empty file")
}

// TestDeletedKeysFileRevokes: deleting the keys file left the old keys
// valid. Now a file missing for one poll interval (measured with the
// injected clock) revokes its keys; a file back in place restores them
// through the usual settle rule, and a brief absence (delete and recreate)
// revokes nothing.
func TestDeletedKeysFileRevokes(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "keys.txt", ka+"\n")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var logs bytes.Buffer
	f, err := OpenFile(p, FileOptions{PollInterval: 10 * time.Second, Now: func() time.Time { return now },
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	require.NoError(t, err)
	ctx := context.Background()

	// A brief absence: deleted, then back within the interval.
	require.NoError(t, os.Remove(p))
	_, err = f.Check(ctx)
	require.ErrorIs(t, err, os.ErrNotExist)
	now = now.Add(5 * time.Second)
	writeFile(t, dir, "keys.txt", ka+"\n")
	_, err = f.Check(ctx)
	require.NoError(t, err)
	assert.True(t, valid(t, f, ka))

	// Deleted for good: still valid within the interval, revoked after it.
	require.NoError(t, os.Remove(p))
	for _, step := range []time.Duration{0, 4 * time.Second, 5 * time.Second} {
		now = now.Add(step)
		_, err = f.Check(ctx)
		require.ErrorIs(t, err, os.ErrNotExist)
		assert.True(t, valid(t, f, ka), "revoked too early")
	}
	now = now.Add(time.Second)
	changed, err := f.Check(ctx)
	require.NoError(t, err)
	assert.True(t, changed)
	assert.False(t, valid(t, f, ka), "a deleted keys file's keys are revoked")
	assert.Zero(t, f.Len())
	assert.Contains(t, logs.String(), `"event":"keys_revoked"`)
	_, err = f.Verify(ctx, ka)
	assert.ErrorIs(t, err, ErrNoKeys)

	// The file comes back: applied once it reads the same twice.
	writeFile(t, dir, "keys.txt", kb+"\n")
	for _, want := range []bool{false, true} {
		changed, err := f.Check(ctx)
		require.NoError(t, err)
		assert.Equal(t, want, changed)
	}
	assert.True(t, valid(t, f, kb))
}
