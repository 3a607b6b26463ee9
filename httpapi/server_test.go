package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHealth(t *testing.T) {
	e := newEnv(t, nil)
	r := e.get(t, "/api/health")
	require.Equal(t, http.StatusOK, r.code)
	m := r.json(t)
	assert.Equal(t, "healthy", m["status"])
	assert.Len(t, m["components"], 3)
	for _, p := range []string{"/api/health/live", "/api/health/ready"} {
		r := e.get(t, p)
		assert.Equal(t, http.StatusOK, r.code, p)
		assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	}
	// A server that is not started is alive but not ready.
	srv, err := New(Config{Runs: runstore.NewMemory(runstore.Options{}), Files: runstore.NewMemFileStore()})
	require.NoError(t, err)
	rec := httptestDo(srv.Handler(), "GET", "/api/health/ready", nil, nil)
	assert.Equal(t, http.StatusServiceUnavailable, rec.code)
	assert.Contains(t, string(rec.body), "not_ready")
	rec = httptestDo(srv.Handler(), "GET", "/api/health/live", nil, nil)
	assert.Equal(t, http.StatusOK, rec.code)
}

func TestMethodsAndNotFound(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct {
		method, path string
		want         int
	}{
		{"POST", "/api/health", 405}, {"PUT", "/api/health", 405}, {"DELETE", "/api/health", 405}, {"PATCH", "/api/health", 405},
		{"POST", "/api/runs", 405}, {"PUT", "/api/runs", 405}, {"DELETE", "/api/runs", 405},
		{"GET", "/api/analyze", 405}, {"PUT", "/api/analyze", 405}, {"DELETE", "/api/analyze", 405},
		{"POST", "/api/ve-data/0123456789abcdef0123456789abcdef", 405},
		{"POST", "/api/diagnostics/0123456789abcdef0123456789abcdef", 405},
		{"DELETE", "/api/download/0123456789abcdef0123456789abcdef/x.csv", 405},
		{"GET", "/api/nonexistent", 404}, {"GET", "/nonexistent", 404}, {"POST", "/", 405}, // GET / is the web UI
		{"GET", "/metrics", 404}, // no Gatherer configured
	}
	for _, c := range cases {
		t.Run(c.method+c.path, func(t *testing.T) {
			r := e.do(t, c.method, c.path, nil, nil)
			require.Equal(t, c.want, r.code, "body %s", r.body)
			code := r.errCode(t)
			if c.want == 405 {
				assert.Equal(t, CodeMethodNotAllowed, code)
				assert.NotEmpty(t, r.header.Get("Allow"))
			} else {
				assert.Equal(t, CodeNotFound, code)
			}
		})
	}
}

// TestSecurityPaths sends the predecessor's security test cases (spec §7.3).
func TestSecurityPaths(t *testing.T) {
	e := newEnv(t, nil)
	run := e.analyze(t, nil)
	paths := []string{
		"/api/download/../../../etc/passwd/file.csv",
		"/api/download/" + run.ID + "/../../../etc/passwd",
		`/api/download/..\..\..\windows\system32/file.csv`,
		"/api/download/%2e%2e%2f%2e%2e%2f/file.csv",
		"/api/download/valid-run%00.csv/file.csv",
		"/api/download/.../file.csv",
		"/api/download/" + run.ID + "/...",
		"/api/download/nonexistent/file.csv",
		"/api/download//file.csv",
		"/api/download/" + run.ID + "/",
		"/api/download/" + run.ID + "/%2e%2e%2fresult.json",
		"/api/ve-data/../../../etc/passwd",
		"/api/ve-data/...",
		"/api/ve-data/.......",
		`/api/ve-data/..\..\..\windows\system32`,
		"/api/diagnostics/../../../etc",
		"/api/diagnostics/...",
		"/api/diagnostics/.......",
		"/api/diagnostics/nonexistent-run",
		"/api/runs/../../etc/passwd",
		"/api/runs/" + strings.Repeat("a", 33),
		"/api/runs/0123456789ABCDEF0123456789ABCDEF",
		"/api/runs/" + run.ID + "/files/0",
		"/api/runs/" + run.ID + "/files/-1",
		"/api/runs/" + run.ID + "/files/abc",
		"/api/runs/" + run.ID + "/files/999999",
		"/api/runs/0123456789abcdef0123456789abcdef",
		"/api/status/invalid-run-id",
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			req, err := http.NewRequest("GET", e.ts.URL+"/", nil)
			require.NoError(t, err)
			req.URL.Opaque = p // send the path exactly as written
			res, err := http.DefaultTransport.RoundTrip(req)
			require.NoError(t, err)
			defer res.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(res.Body)
			assert.Contains(t, []int{400, 404}, res.StatusCode, "body %s", buf.String())
			assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
			body := buf.String()
			assert.False(t, contains(body, `C:\`, "/home/", "/var/", "/tmp/", "Traceback", `File "`, "goroutine"), body)
			assert.NotEmpty(t, res.Header.Get(HeaderRequestID))
		})
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t, nil)
	hex12 := regexp.MustCompile(`^[a-f0-9]{12}$`)
	seen := map[string]bool{}
	for range 10 {
		id := e.get(t, "/api/health/live").header.Get(HeaderRequestID)
		assert.Regexp(t, hex12, id)
		seen[id] = true
	}
	assert.Len(t, seen, 10)
	for _, c := range []struct{ in, want string }{
		{"my-custom-id-123", "my-custom-id-123"},
		{"trace-abc_123.xyz", "trace-abc_123.xyz"},
		{"", ""},
		{"bad id with spaces", ""},
		{strings.Repeat("a", 65), ""},
		{"ünïcode", ""},
	} {
		r := e.do(t, "GET", "/api/nonexistent", nil, map[string]string{HeaderRequestID: c.in})
		got := r.header.Get(HeaderRequestID)
		if c.want != "" {
			assert.Equal(t, c.want, got)
		} else {
			assert.Regexp(t, hex12, got, "input %q", c.in)
		}
		assert.Equal(t, CodeNotFound, r.errCode(t)) // checks the body's id too
	}
	r := e.do(t, "POST", "/api/analyze", nil, nil)
	assert.NotEmpty(t, r.header.Get(HeaderRequestID))
	assert.Equal(t, CodeUnsupportedMedia, r.errCode(t))
}

func TestAnalyzeLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	r := e.upload(t, "pulls.csv", testLog(t), map[string]string{"smoothPasses": "2", "clamp": "10", "vehicle": "FLHX 114"}, nil)
	require.Equal(t, http.StatusAccepted, r.code, "body %s", r.body)
	m := r.json(t)
	id := m["run_id"].(string)
	assert.Equal(t, id, m["runId"], "the predecessor's name, on its route")
	assert.Equal(t, "queued", m["status"])
	assert.Equal(t, "/api/runs/"+id, r.header.Get("Location"))
	run := e.wait(t, id)
	require.Equal(t, runstore.StatusCompleted, run.Status, "error: %+v", run.Error)
	assert.Equal(t, "pulls.csv", run.Filename)
	assert.Equal(t, "FLHX 114", run.Vehicle)
	require.NotNil(t, run.Stats.PeakHP)
	assert.Greater(t, *run.Stats.PeakHP, 50.0)
	require.NotNil(t, run.Stats.CorrectedCells)
	assert.Greater(t, *run.Stats.CorrectedCells, int64(0), "the simulated ECU is off, so cells get corrected")
	assert.InDelta(t, 1.0, run.Progress, 1e-9)

	// Settings are stored validated.
	var settings AnalysisOptions
	require.NoError(t, json.Unmarshal(run.Settings, &settings))
	assert.Equal(t, 2, settings.SmoothPasses)
	assert.Equal(t, 10.0, settings.ClampPercent)

	st := e.get(t, "/api/status/"+id).json(t)
	assert.Equal(t, "completed", st["status"])
	assert.EqualValues(t, 100, st["progress"])
	assert.Equal(t, id, st["runId"], "the predecessor's route keeps its names")
	assert.NotContains(t, st, "state", "one name per field: status")
	assert.NotContains(t, st, "run_id")

	g := e.get(t, "/api/runs/"+id)
	require.Equal(t, 200, g.code)
	gm := g.json(t)
	assert.Contains(t, gm["run"].(map[string]any), "results")
	assert.Equal(t, id, gm["run"].(map[string]any)["id"])
	assert.Equal(t, "completed", gm["run"].(map[string]any)["status"])
	for _, dup := range []string{"runId", "legacy_status", "state"} {
		assert.NotContains(t, gm["run"].(map[string]any), dup, "the native API has one name per field")
	}
	assert.NotContains(t, string(g.body), "storage_key")
	hist := gm["history"].([]any)
	assert.Len(t, hist, 3) // created, processing, completed

	l := e.get(t, "/api/runs?status=completed&limit=10").json(t)
	require.Len(t, l["runs"], 1)
	assert.NotContains(t, l["runs"].([]any)[0].(map[string]any), "results", "lists stay small")

	fl := e.get(t, "/api/runs/"+id+"/files").json(t)["files"].([]any)
	names := map[string]map[string]any{}
	for _, f := range fl {
		fm := f.(map[string]any)
		names[fm["name"].(string)] = fm
	}
	for _, n := range []string{"pulls.csv", "VE_Correction_Front.csv", "VE_Multiplier_Rear.csv", "Diagnostics.txt", "result.json"} {
		assert.Contains(t, names, n)
	}
	// Download by id and by name: the bytes hash to the recorded checksum.
	f := names["VE_Correction_Front.csv"]
	for _, p := range []string{f["url"].(string), "/api/download/" + id + "/VE_Correction_Front.csv"} {
		d := e.get(t, p)
		require.Equal(t, 200, d.code, p)
		sum := sha256.Sum256(d.body)
		assert.Equal(t, f["sha256"], hex.EncodeToString(sum[:]))
		assert.Equal(t, f["sha256"], d.header.Get("X-Checksum-SHA256"))
		assert.Contains(t, d.header.Get("Content-Disposition"), "VE_Correction_Front.csv")
		assert.Equal(t, "nosniff", d.header.Get("X-Content-Type-Options"))
	}
	in := e.get(t, names["pulls.csv"]["url"].(string))
	assert.Equal(t, testLog(t), in.body, "the upload is kept byte for byte")
	nm := e.do(t, "GET", f["url"].(string), nil, map[string]string{"If-None-Match": `"` + f["sha256"].(string) + `"`})
	assert.Equal(t, http.StatusNotModified, nm.code)

	vd := e.get(t, "/api/ve-data/"+id).json(t)
	rpm := vd["rpm"].([]any)
	load := vd["load"].([]any)
	require.NotEmpty(t, rpm)
	for _, v := range rpm {
		assert.Equal(t, v, float64(int(v.(float64))), "rpm are integers")
	}
	before, after := vd["before"].([]any), vd["after"].([]any)
	require.Len(t, before, len(rpm))
	require.Len(t, after, len(rpm))
	assert.Len(t, before[0], len(load))
	assert.Len(t, vd["cylinders"], 2)

	dg := e.get(t, "/api/diagnostics/"+id).json(t)
	assert.Contains(t, dg["report"], "DynoAI")
	assert.Contains(t, dg, "anomalies")

	// A checksum failure is refused, never served.
	fid := int64(f["id"].(float64))
	rf, err := e.runs.File(context.Background(), id, fid)
	require.NoError(t, err)
	require.True(t, e.files.Corrupt(rf.StorageKey))
	bad := e.get(t, f["url"].(string))
	assert.Equal(t, 500, bad.code)
	assert.Equal(t, CodeChecksum, bad.errCode(t))

	del := e.do(t, "DELETE", "/api/runs/"+id, nil, nil)
	assert.Equal(t, http.StatusNoContent, del.code)
	assert.Equal(t, 404, e.get(t, "/api/runs/"+id).code)
	assert.Equal(t, 404, e.get(t, "/api/ve-data/"+id).code)
	assert.Equal(t, 404, e.do(t, "DELETE", "/api/runs/"+id, nil, nil).code)
}

func TestAnalyzeBadUploads(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxUploadBytes = 1 << 20 })
	log := testLog(t)[:64<<10] // a valid prefix: header and rows
	log = log[:bytes.LastIndexByte(log, '\n')+1]
	cases := []struct {
		name   string
		file   string
		data   []byte
		fields map[string]string
		ct     string
		want   int
		code   string
		msg    string
	}{
		{name: "no file", file: "-", fields: map[string]string{"clamp": "7"}, want: 400, code: CodeBadRequest, msg: "No file provided"},
		{name: "empty filename", file: "", data: log, want: 400, code: CodeBadRequest, msg: "No file selected"},
		{name: "shell", file: "malicious.sh", data: log, want: 400, code: CodeFileType},
		{name: "html", file: "xss.html", data: log, want: 400, code: CodeFileType},
		{name: "json", file: "data.json", data: log, want: 400, code: CodeFileType},
		{name: "python", file: "exploit.py", data: log, want: 400, code: CodeFileType},
		{name: "bin", file: "bad_file.bin", data: log, want: 400, code: CodeFileType},
		{name: "no extension", file: "csv", data: log, want: 400, code: CodeFileType},
		{name: "binary content", file: "x.csv", data: append([]byte("rpm,map_kpa\n1,2\n"), 0, 1, 2), want: 400, code: CodeValidation, msg: "NUL byte at offset 16"},
		{name: "empty", file: "x.csv", data: nil, want: 400, code: CodeValidation, msg: "empty"},
		{name: "not a log", file: "x.csv", data: []byte("a,b,c\n1,2,3\n"), want: 400, code: CodeCSVParsing},
		{name: "header only", file: "x.csv", data: log[:bytes.IndexByte(log, '\n')+1], want: 400, code: CodeCSVParsing, msg: "no data rows"},
		{name: "bad number", file: "x.csv", data: []byte("time_s,rpm,map_kpa\n0.01,abc,50\n"), want: 400, code: CodeCSVParsing, msg: `x.csv:2: column 2 \"rpm\" (byte 24)`},
		{name: "unknown option", file: "x.csv", data: log, fields: map[string]string{"frobnicate": "1"}, want: 400, code: CodeValidation, msg: "unknown field"},
		{name: "smooth out of range", file: "x.csv", data: log, fields: map[string]string{"smoothPasses": "11"}, want: 400, code: CodeValidation, msg: "0..5"},
		{name: "clamp not a number", file: "x.csv", data: log, fields: map[string]string{"clamp": "abc"}, want: 400, code: CodeValidation},
		{name: "clamp NaN", file: "x.csv", data: log, fields: map[string]string{"clamp": "NaN"}, want: 400, code: CodeValidation},
		{name: "decel unsupported", file: "x.csv", data: log, fields: map[string]string{"decelManagement": "true"}, want: 400, code: CodeValidation, msg: "not supported"},
		{name: "rear bias unsupported", file: "x.csv", data: log, fields: map[string]string{"rearBias": "2.5"}, want: 400, code: CodeValidation},
		{name: "oversized field", file: "x.csv", data: log, fields: map[string]string{"vehicle": strings.Repeat("x", 2000)}, want: 400, code: CodeValidation},
		{name: "too large", file: "x.csv", data: bytes.Repeat(log, 20), want: 413, code: CodeTooLarge},
		{name: "traversal name", file: "../../etc/passwd.csv", data: log, want: 202},
		{name: "unicode name", file: "тест_файл.csv", data: log, want: 202},
		{name: "neutral predecessor fields", file: "x.csv", data: log, fields: map[string]string{"rearBias": "0", "decelManagement": "false", "hotExtra": "-1.0"}, want: 202},
		{name: "upper-case extension", file: "LOG.CSV", data: log, want: 202},
		{name: "txt", file: "log.txt", data: log, want: 202},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.upload(t, c.file, c.data, c.fields, nil)
			require.Equal(t, c.want, r.code, "body %s", r.body)
			if c.want == 202 {
				id := r.json(t)["run_id"].(string)
				run := e.wait(t, id)
				assert.NotContains(t, run.Filename, "/")
				assert.NotContains(t, run.Filename, "..")
				return
			}
			assert.Equal(t, c.code, r.errCode(t))
			if c.msg != "" {
				assert.Contains(t, string(r.body), c.msg)
			}
		})
	}
	// Refused uploads leave contents only until the sweep: once they are
	// old enough, every stored blob belongs to a run.
	t.Run("no orphans after a sweep", func(t *testing.T) {
		_, err := runstore.SweepFiles(context.Background(), e.runs, e.files, time.Now().Add(runstore.MinUnreferencedAge+time.Minute))
		require.NoError(t, err)
		page, err := e.runs.List(context.Background(), runstore.Filter{Limit: 1000})
		require.NoError(t, err)
		keys := map[string]bool{}
		for _, run := range page.Runs {
			fs, err := e.runs.Files(context.Background(), run.ID)
			require.NoError(t, err)
			for _, f := range fs {
				keys[f.StorageKey] = true
			}
		}
		assert.Equal(t, len(keys), e.files.Len())
	})
	t.Run("bad row later fails the run", func(t *testing.T) {
		bad := append(append([]byte{}, log...), []byte("0.5,abc,50\n")...)
		r := e.upload(t, "late.csv", bad, nil, nil)
		require.Equal(t, 202, r.code, "body %s", r.body)
		run := e.wait(t, r.json(t)["run_id"].(string))
		require.Equal(t, runstore.StatusFailed, run.Status)
		assert.Equal(t, CodeCSVParsing, run.Error.Code)
		assert.Contains(t, run.Error.Message, "late.csv")
		st := e.get(t, "/api/status/"+run.ID).json(t)
		assert.Equal(t, "error", st["status"])
		assert.Contains(t, st["error"], "late.csv:237")
		g := e.get(t, "/api/runs/"+run.ID)
		assert.NotContains(t, string(g.body), "detail", "internal detail is not shown")
	})
	t.Run("too large without content length", func(t *testing.T) {
		body, ct := multipartBody(t, "big.csv", bytes.Repeat(log, 20), nil)
		req, err := http.NewRequest("POST", e.ts.URL+"/api/analyze", io.NopCloser(body)) // unknown length: chunked
		require.NoError(t, err)
		req.Header.Set("Content-Type", ct)
		res, err := e.ts.Client().Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.Equal(t, 413, res.StatusCode, "body %s", b)
		assert.Contains(t, string(b), CodeTooLarge)
	})
	t.Run("wrong content type", func(t *testing.T) {
		r := e.do(t, "POST", "/api/analyze", strings.NewReader("rpm,map\n"), map[string]string{"Content-Type": "text/csv"})
		assert.Equal(t, 415, r.code)
		assert.Equal(t, CodeUnsupportedMedia, r.errCode(t))
	})
	t.Run("two files", func(t *testing.T) {
		var b bytes.Buffer
		body, ct := multipartBody(t, "a.csv", log, nil)
		_, _ = b.ReadFrom(body)
		s := strings.Replace(b.String(), "--\r\n", "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.csv\"\r\n\r\nx\r\n--"+ct[strings.Index(ct, "=")+1:]+"--\r\n", 1)
		_ = s
		r := e.do(t, "POST", "/api/analyze", strings.NewReader(twoFiles(log)), map[string]string{"Content-Type": "multipart/form-data; boundary=XYZ"})
		assert.Equal(t, 400, r.code)
		assert.Contains(t, string(r.body), "more than one file")
	})
}

func twoFiles(data []byte) string {
	var b strings.Builder
	for _, n := range []string{"a.csv", "b.csv"} {
		b.WriteString("--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + n + "\"\r\nContent-Type: text/csv\r\n\r\n")
		b.Write(data)
		b.WriteString("\r\n")
	}
	b.WriteString("--XYZ--\r\n")
	return b.String()
}

func TestRunsListValidation(t *testing.T) {
	e := newEnv(t, nil)
	for _, q := range []string{"?status=bogus", "?source=bogus", "?limit=0", "?limit=1001", "?limit=x", "?frob=1", "?cursor=!!!"} {
		r := e.get(t, "/api/runs"+q)
		assert.Equal(t, 400, r.code, "%s: %s", q, r.body)
		r.errCode(t)
	}
	for _, q := range []string{"", "?status=pending,running", "?source=manual_upload", "?limit=5", "?q=pulls"} {
		r := e.get(t, "/api/runs"+q)
		assert.Equal(t, 200, r.code, "%s: %s", q, r.body)
	}
}

func TestDeleteUnfinishedRunConflicts(t *testing.T) {
	e := newEnv(t, nil)
	run, err := e.runs.Create(context.Background(), runstore.NewRun{Source: runstore.SourceAPI, Filename: "x.csv"})
	require.NoError(t, err)
	r := e.do(t, "DELETE", "/api/runs/"+run.ID, nil, nil)
	assert.Equal(t, 409, r.code)
	assert.Equal(t, CodeConflict, r.errCode(t))
	r = e.get(t, "/api/ve-data/"+run.ID)
	assert.Equal(t, 404, r.code)
	assert.Contains(t, string(r.body), "queued")
	assert.Equal(t, "queued", e.get(t, "/api/status/"+run.ID).json(t)["status"])
	_ = strconv.Itoa
}
