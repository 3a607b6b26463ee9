package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/sqlstore"
	"github.com/dynoai/dynoai/tune"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseEnvFile(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want map[string]string
		err  string
	}{
		{"empty", "", map[string]string{}, ""},
		{"basic", "A=1\nB = two \n", map[string]string{"A": "1", "B": "two"}, ""},
		{"comments", "# c\n\n  # indented\nA=x # inline\nB=y\t# tab\nC=# only a comment\n", map[string]string{"A": "x", "B": "y", "C": ""}, ""},
		{"hash inside", "A=a#b\n", map[string]string{"A": "a#b"}, ""},
		{"export", "export A=1\n", map[string]string{"A": "1"}, ""},
		{"quotes", `A="x # y"` + "\n" + `B='lit\n'` + "\n" + `C="q\"\\\n"`, map[string]string{"A": "x # y", "B": `lit\n`, "C": "q\"\\\n"}, ""},
		{"bom crlf", "\xef\xbb\xbfA=1\r\nB=2\r\n", map[string]string{"A": "1", "B": "2"}, ""},
		{"semicolons", "R=5/minute;20/hour  # x\n", map[string]string{"R": "5/minute;20/hour"}, ""},
		{"no equals", "A=1\nJUSTTEXT\n", nil, "e:2:1: want KEY=VALUE"},
		{"bad name", "1A=1\n", nil, "e:1:1: invalid character"},
		{"bad name char", "A-B=1\n", nil, "e:1:2: invalid character '-'"},
		{"duplicate", "A=1\nA=2\n", nil, "e:2:1: A is set twice"},
		{"unterminated", "A=\"abc\n", nil, "e:1:3: A: unterminated double quote"},
		{"after quote", "A='x' y\n", nil, "text after the closing quote"},
		{"bad escape", `A="\q"`, nil, `unknown escape \q`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseEnvFile("e", []byte(c.in))
			if c.err != "" {
				var ee *EnvFileError
				require.ErrorAs(t, err, &ee)
				assert.Contains(t, err.Error(), c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

func FuzzParseEnvFile(f *testing.F) {
	for _, s := range []string{"A=1\n", "export B='x' # c\n", "C=\"a\\\"b\"\n", "#\n\nD=", "E=\"", "\xef\xbb\xbfF=1\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseEnvFile("fuzz", data)
		if err != nil {
			var ee *EnvFileError
			if !errors.As(err, &ee) || ee.Line < 1 || ee.Column < 1 {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		for k := range m {
			if k == "" || strings.ContainsAny(k, "= \t\n#") {
				t.Fatalf("bad key %q", k)
			}
		}
	})
}

func lookupOf(env map[string]string) ([]string, func(string) (string, bool)) {
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	return environ, func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestLoadSettings(t *testing.T) {
	environ, lookup := lookupOf(map[string]string{"PATH": "/bin", "HOME": "/root", "XAI_API_KEY": "unrelated"})
	s, err := loadSettings(environ, lookup)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", s.Host, "loopback by default")
	assert.Equal(t, 5001, s.Port)
	assert.False(t, s.Debug, "debug off by default")
	assert.True(t, strings.HasPrefix(s.DatabaseURL, "sqlite:"))
	assert.EqualValues(t, 50<<20, s.MaxUploadBytes)
	assert.True(t, s.RateEnabled)
	assert.NoError(t, s.checkExposure(false))

	environ, lookup = lookupOf(map[string]string{
		"DYNOAI_PORTT":            "1",             // typo
		"DYNOAI_DEBUG":            "maybe",         // malformed bool
		"DYNOAI_PORT":             "70000",         // out of range
		"RATE_LIMIT_DEFAULT":      "lots",          // malformed rate
		"RATE_LIMIT_STORAGE":      "memcached://x", // unsupported
		"DYNOAI_TRUSTED_PROXIES":  "10.0.0.0/8,nope",
		"DYNOAI_SHUTDOWN_TIMEOUT": "30",       // no unit
		"JETSTREAM_ENABLED":       "true",     // without url and key
		"JETDRIVE_MCAST_GROUP":    "10.0.0.1", // not multicast
		"PROMETHEUS_METRICS":      "true",     // unknown
		"LOG_LEVEL":               "loud",
		"PROMETHEUS_METRICS_PORT": "9090",
	})
	_, err = loadSettings(environ, lookup)
	require.Error(t, err)
	for _, want := range []string{"DYNOAI_PORTT: unknown variable", "DYNOAI_DEBUG: \"maybe\"", "DYNOAI_PORT: \"70000\"",
		"RATE_LIMIT_DEFAULT", "RATE_LIMIT_STORAGE", "\"nope\"", "DYNOAI_SHUTDOWN_TIMEOUT", "JETSTREAM_ENABLED: needs",
		"JETDRIVE_MCAST_GROUP", "PROMETHEUS_METRICS: unknown variable", "LOG_LEVEL", "need PROMETHEUS_METRICS_ENABLED"} {
		assert.Contains(t, err.Error(), want)
	}

	environ, lookup = lookupOf(map[string]string{"DYNOAI_HOST": "0.0.0.0"})
	s, err = loadSettings(environ, lookup)
	require.NoError(t, err)
	assert.Error(t, s.checkExposure(false), "an open bind without auth is refused")
	assert.NoError(t, s.checkExposure(true))
}

// TestEnvExamples parses the shipped examples: every variable in them is
// known, and every known variable is documented in .env.example.
func TestEnvExamples(t *testing.T) {
	files := []string{"../../.env.example", "env/staging.env.example", "env/production.env.example"}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		env, err := parseEnvFile(f, data)
		require.NoError(t, err)
		for k := range env {
			assert.Contains(t, knownVars, k, "%s sets an unknown variable", f)
		}
		if strings.HasSuffix(f, "/.env.example") {
			for k := range knownVars {
				assert.Contains(t, env, k, ".env.example does not document %s", k)
			}
			environ, lookup := lookupOf(env)
			_, err := loadSettings(environ, lookup)
			assert.NoError(t, err, "the development example is valid as is")
		}
	}
}

func testLog(t *testing.T) []byte {
	sc, err := tune.ScenarioByName("demo", 1)
	require.NoError(t, err)
	sim, err := sc.Simulator()
	require.NoError(t, err)
	var b bytes.Buffer
	w := dynolog.NewCSVWriter(&b, sim.Layout())
	s := dyno.NewSample()
	for {
		err := sim.Next(context.Background(), &s)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.NoError(t, w.WriteSample(&s))
	}
	require.NoError(t, w.Flush())
	return b.Bytes()
}

// start runs the server with env and returns its URL and a stop function
// that waits for it to exit.
func start(t *testing.T, env map[string]string) (string, func() error) {
	t.Helper()
	environ, _ := lookupOf(env)
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() { done <- run(ctx, environ, "", &logs, func(a string) { addr <- a }) }()
	select {
	case a := <-addr:
		return "http://" + a, func() error { cancel(); return <-done }
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v\n%s", err, logs.String())
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("server did not start in time")
	}
	return "", nil
}

func TestRunServesAndPersists(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"DYNOAI_DATA_DIR": dir, "DYNOAI_PORT": "0", "PROMETHEUS_METRICS_ENABLED": "true"}
	url, stop := start(t, env)
	res, err := http.Get(url + "/api/health")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode)

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "pulls.csv")
	require.NoError(t, err)
	_, _ = fw.Write(testLog(t))
	require.NoError(t, mw.Close())
	res, err = http.Post(url+"/api/analyze", mw.FormDataContentType(), &body)
	require.NoError(t, err)
	var acc map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&acc))
	res.Body.Close()
	require.Equal(t, 202, res.StatusCode, "%v", acc)
	id := acc["run_id"].(string)
	require.Eventually(t, func() bool {
		res, err := http.Get(url + "/api/status/" + id)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var st map[string]any
		_ = json.NewDecoder(res.Body).Decode(&st)
		return st["status"] == "completed"
	}, 30*time.Second, 50*time.Millisecond)
	// The worker records its metrics just after the run commits.
	require.Eventually(t, func() bool {
		res, err := http.Get(url + "/metrics")
		if err != nil {
			return false
		}
		mb, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return strings.Contains(string(mb), `dynoai_analysis_total{source="upload",status="success"} 1`)
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, stop())
	_, err = os.Stat(filepath.Join(dir, "dynoai.db"))
	require.NoError(t, err, "SQLite file in the data dir")

	// A restart finds the run, and analyzes an upload a "crashed" process
	// had accepted and started (its lease runs out) without a new upload.
	rs, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(dir, "dynoai.db"), sqlstore.Options{})
	require.NoError(t, err)
	files, err := runstore.NewLocalFileStore(filepath.Join(dir, "files"), runstore.LocalFileStoreOptions{})
	require.NoError(t, err)
	blob, err := files.Put(context.Background(), bytes.NewReader(testLog(t)))
	require.NoError(t, err)
	left, err := rs.Submit(context.Background(), runstore.NewRun{Source: runstore.SourceUpload, Filename: "x.csv", InputSize: blob.Size},
		runstore.NewJob{Input: runstore.FileMeta{Name: "x.csv", ContentType: "text/csv", Size: blob.Size, SHA256: blob.SHA256, StorageKey: blob.Key}})
	require.NoError(t, err)
	_, err = rs.Claim(context.Background(), runstore.Claim{Worker: "crashed/1", Lease: time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, rs.Close())
	url, stop = start(t, env)
	defer func() { require.NoError(t, stop()) }()
	for runID, want := range map[string]string{id: "completed", left.Run.ID: "completed"} {
		require.Eventually(t, func() bool {
			res, err := http.Get(url + "/api/status/" + runID)
			if err != nil {
				return false
			}
			defer res.Body.Close()
			var st map[string]any
			_ = json.NewDecoder(res.Body).Decode(&st)
			return st["status"] == want
		}, 30*time.Second, 50*time.Millisecond, runID)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"unknown var":             {"DYNOAI_DATA_DIR": t.TempDir(), "DYNOAI_VERBOSE": "1"},
		"open bind":               {"DYNOAI_DATA_DIR": t.TempDir(), "DYNOAI_HOST": "0.0.0.0", "DYNOAI_PORT": "0"},
		"bad auth flag":           {"DYNOAI_DATA_DIR": t.TempDir(), "API_AUTH_ENABLED": "sure"},
		"missing keys file":       {"DYNOAI_DATA_DIR": t.TempDir(), "API_AUTH_ENABLED": "true", "API_KEYS_FILE": "/nonexistent/keys"},
		"wildcard cors with auth": {"DYNOAI_DATA_DIR": t.TempDir(), "DYNOAI_PORT": "0", "API_AUTH_ENABLED": "true", "API_KEYS": "dynoai_k1_0123456789abcdefghij", "DYNOAI_CORS_ORIGINS": "*"},
	} {
		environ, _ := lookupOf(env)
		err := run(context.Background(), environ, "", io.Discard, nil)
		assert.Error(t, err, name)
	}
	err := run(context.Background(), nil, "/nonexistent/.env", io.Discard, nil)
	assert.Error(t, err)
}

// TestDatabaseURLTypoRefused: DATABASE_URL='postgres//user:secret@host/db'
// opened a SQLite file of that name and printed the password, and
// '::::not a url' silently started on a SQLite file in the working
// directory. Both stop the server at startup now, with the URL redacted,
// and create nothing.
func TestDatabaseURLTypoRefused(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, u := range []string{"postgres//user:secret@host/db", "::::not a url", "/tmp/plain/path.db"} {
		var logs bytes.Buffer
		environ, _ := lookupOf(map[string]string{"DYNOAI_DATA_DIR": filepath.Join(dir, "data"), "DYNOAI_PORT": "0", "DATABASE_URL": u})
		err := run(context.Background(), environ, "", &logs, nil)
		require.Error(t, err, u)
		assert.Contains(t, err.Error(), "DATABASE_URL")
		assert.NotContains(t, err.Error()+logs.String(), "secret")
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing was created")
}

// TestStagingExampleClosesReads: staging.env.example binds 0.0.0.0 with
// authentication on, and reads (logs, results, /metrics, Jetstream status)
// used to stay open that way. Run with the example's settings (only the
// database, key file and bind address replaced so that it runs here), a
// read without a key is refused and /metrics needs an admin key.
func TestStagingExampleClosesReads(t *testing.T) {
	data, err := os.ReadFile("env/staging.env.example")
	require.NoError(t, err)
	env, err := parseEnvFile("staging", data)
	require.NoError(t, err)
	assert.Equal(t, "0.0.0.0", env["DYNOAI_HOST"])
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.txt")
	const reader = "dynoai_staging_reader_0123456789"
	const admin = "dynoai_staging_admin_01234567890"
	require.NoError(t, os.WriteFile(keys, []byte(reader+" scopes=read\n"+admin+" scopes=admin\n"), 0o600))
	env["DYNOAI_HOST"], env["DYNOAI_PORT"] = "127.0.0.1", "0"
	env["DYNOAI_DATA_DIR"], env["DATABASE_URL"], env["API_KEYS_FILE"] = dir, "sqlite:"+filepath.Join(dir, "s.db"), keys
	url, stop := start(t, env)
	defer func() { require.NoError(t, stop()) }()
	for _, p := range []string{"/api/runs", "/metrics", "/api/health", "/api/status/" + strings.Repeat("0", 32)} {
		res, err := http.Get(url + p)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, 401, res.StatusCode, p)
	}
	for key, want := range map[string]int{reader: 403, admin: 200} {
		req, _ := http.NewRequest("GET", url+"/metrics", nil)
		req.Header.Set("X-API-Key", key)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, want, res.StatusCode)
	}
	res, err := http.Get(url + "/api/health/ready")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 200, res.StatusCode, "readiness stays open")
}

// TestDataDirDeletedWhileRunning: with the data directory deleted under a
// running server, health stayed 200 and uploads answered 202 and completed
// into the deleted SQLite file, so those runs were gone after a restart.
// Now readiness and health answer 503 naming the component, uploads answer
// 503 STORAGE_UNAVAILABLE, and nothing the server acknowledged is missing
// after a restart.
func TestDataDirDeletedWhileRunning(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	env := map[string]string{"DYNOAI_DATA_DIR": data, "DYNOAI_PORT": "0"}
	url, stop := start(t, env)
	upload := func() (int, string) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, err := mw.CreateFormFile("file", "pulls.csv")
		require.NoError(t, err)
		_, _ = fw.Write(testLog(t))
		require.NoError(t, mw.Close())
		res, err := http.Post(url+"/api/analyze", mw.FormDataContentType(), &body)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, body := upload()
	require.Equal(t, 202, code, body)
	var acc map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &acc))
	kept := acc["run_id"].(string)
	require.Eventually(t, func() bool {
		res, err := http.Get(url + "/api/status/" + kept)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var st map[string]any
		_ = json.NewDecoder(res.Body).Decode(&st)
		return st["status"] == "completed"
	}, 30*time.Second, 50*time.Millisecond)

	require.NoError(t, os.RemoveAll(data))
	var ready map[string]any
	require.Eventually(t, func() bool {
		res, err := http.Get(url + "/api/health/ready")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		ready = nil
		_ = json.NewDecoder(res.Body).Decode(&ready)
		return res.StatusCode == 503
	}, 5*time.Second, 50*time.Millisecond, "readiness notices the deleted data directory")
	assert.Contains(t, []any{"database", "file_store"}, ready["component"])
	res, err := http.Get(url + "/api/health")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 503, res.StatusCode)
	for range 3 {
		code, body := upload()
		assert.Equal(t, 503, code, body)
		assert.Contains(t, body, "STORAGE_UNAVAILABLE")
	}
	require.NoError(t, stop())

	// A restart on the (recreated, empty) data directory: nothing the
	// server acknowledged after the deletion is missing, because it
	// acknowledged nothing.
	url, stop = start(t, env)
	defer func() { require.NoError(t, stop()) }()
	res, err = http.Get(url + "/api/runs")
	require.NoError(t, err)
	var list map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&list))
	res.Body.Close()
	assert.Empty(t, list["runs"])
}
