package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowReader yields data a few bytes at a time, each after a pause.
type slowReader struct {
	data  []byte
	chunk int
	pause time.Duration
	stop  <-chan struct{}
	// started, when set, counts readers that have sent their first bytes.
	started *atomic.Int64
	sent    bool
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	select {
	case <-r.stop:
		return 0, io.ErrClosedPipe
	case <-time.After(r.pause):
	}
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	if !r.sent && r.started != nil {
		r.sent = true
		r.started.Add(1)
	}
	return n, nil
}

// TestSlowUploadsTakeNoSlot: an analysis slot was taken before the upload
// body was read, so 18 uploads trickling at 10 B/s answered every other
// analysis with 503 for as long as they lasted. Now a slot is taken only
// once the log is stored, and a body arriving slower than MinUploadRate
// after UploadGrace is cut off with 408 UPLOAD_TOO_SLOW.
func TestSlowUploadsTakeNoSlot(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Workers, c.Queue = 1, 1
		c.MinUploadRate, c.UploadGrace = 1000, 700*time.Millisecond
	})
	log := testLog(t)[:16<<10]
	log = log[:bytes.LastIndexByte(log, '\n')+1]
	stop := make(chan struct{})
	defer close(stop)
	type result struct {
		code int
		body string
	}
	results := make(chan result, 18)
	var started atomic.Int64
	var wg sync.WaitGroup
	for range 18 {
		wg.Go(func() {
			body, ct := multipartBody(t, "slow.csv", log, nil)
			data, _ := io.ReadAll(body)
			req, _ := http.NewRequest("POST", e.ts.URL+"/api/analyze", &slowReader{data: data, chunk: 1, pause: 100 * time.Millisecond, stop: stop, started: &started})
			req.ContentLength = int64(len(data))
			req.Header.Set("Content-Type", ct)
			res, err := e.ts.Client().Do(req)
			if err != nil {
				results <- result{code: -1, body: err.Error()}
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			results <- result{code: res.StatusCode, body: string(b)}
		})
	}
	// The slow uploads are under way (each has sent its first bytes; at
	// 10 B/s they would take half an hour).
	require.Eventually(t, func() bool { return started.Load() == 18 }, time.Minute, time.Millisecond)
	r := e.upload(t, "fast.csv", log, nil, nil)
	require.Equal(t, 202, r.code, "an analysis while slow uploads trickle: %s", r.body)
	e.wait(t, r.json(t)["run_id"].(string))
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(5 * time.Minute): // far below the half hour they would take
		t.Fatal("the slow uploads were not cut off")
	}
	close(results)
	for res := range results {
		assert.Equal(t, http.StatusRequestTimeout, res.code, res.body)
		assert.Contains(t, res.body, CodeUploadTooSlow, "cut off, not let through")
	}
	page, err := e.runs.List(context.Background(), runstore.Filter{})
	require.NoError(t, err)
	assert.Len(t, page.Runs, 1, "no run for the slow uploads")
}

// TestTruncatedUploads: a truncated or aborted multipart upload answered
// 500 and logged an ERROR. Now it is 400 UPLOAD_INCOMPLETE, logged below
// ERROR, and stores no run.
func TestTruncatedUploads(t *testing.T) {
	var logs syncBuffer
	e := newEnv(t, func(c *Config) { c.Logger = slogNew(&logs) })
	log := testLog(t)[:32<<10]
	body, ct := multipartBody(t, "cut.csv", log, map[string]string{"smoothPasses": "1"})
	full, _ := io.ReadAll(body)
	fileStart := bytes.Index(full, []byte("filename="))
	require.Positive(t, fileStart)
	for name, cut := range map[string]int{
		"inside the file part":     fileStart + 4000,
		"before the closing":       len(full) - 10,
		"just after the file part": bytes.LastIndex(full, []byte("\r\n--")) + 2,
		"inside a part header":     bytes.Index(full, []byte("Content-Disposition")) + 5,
	} {
		t.Run(name, func(t *testing.T) {
			logs.Reset()
			r := e.do(t, "POST", "/api/analyze", bytes.NewReader(full[:cut]), map[string]string{"Content-Type": ct})
			require.Equal(t, 400, r.code, "%s", r.body)
			code := r.errCode(t)
			assert.Contains(t, []string{CodeUploadIncomplete, CodeBadRequest}, code, "%s", r.body)
			if name != "inside a part header" {
				assert.Equal(t, CodeUploadIncomplete, code, "%s", r.body)
			}
			assert.NotContains(t, logs.String(), "level=ERROR")
		})
	}

	t.Run("aborted by the client", func(t *testing.T) {
		logs.Reset()
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
		require.NoError(t, err)
		fmt.Fprintf(conn, "POST /api/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", ct, len(full))
		_, err = conn.Write(full[:len(full)/2])
		require.NoError(t, err)
		require.NoError(t, conn.Close())
		// The request's own log line says the handler is done with it.
		require.Eventually(t, func() bool {
			return strings.Contains(logs.String(), "msg=request") && strings.Contains(logs.String(), "path=/api/analyze")
		}, time.Minute, 5*time.Millisecond)
		assert.NotContains(t, logs.String(), "level=ERROR", "a client that hangs up is not a server error")
	})
	page, err := e.runs.List(context.Background(), runstore.Filter{})
	require.NoError(t, err)
	assert.Empty(t, page.Runs)

	// Direct: the error a dropped connection gives is 400, not 500.
	rec := httptestDo(e.srv.Handler(), "POST", "/api/analyze", io.MultiReader(bytes.NewReader(full[:2000]), errReader{}),
		map[string]string{"Content-Type": ct})
	assert.Equal(t, 400, rec.code, "%s", rec.body)
	assert.Contains(t, string(rec.body), CodeUploadIncomplete)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, fmt.Errorf("read tcp: %w", net.ErrClosed) }

// rawRequest sends raw bytes to addr and returns the status line, the
// Content-Type and the body of the answer.
func rawRequest(t *testing.T, addr, req string) (string, string, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	go func() { _, _ = io.WriteString(conn, req) }()
	res, err := http.ReadResponse(bufioReader(conn), nil)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.Status, res.Header.Get("Content-Type"), string(b)
}

// TestServerErrorsInEnvelope: the errors net/http answered itself (headers
// too large, a request target too long) came as plain text. What a wrapper
// can see is now in the envelope; what only net/http sees (a malformed
// request line or path escape, a header block over the hard limit) stays
// plain text and is documented (package doc, openapi.json).
func TestServerErrorsInEnvelope(t *testing.T) {
	srv, err := New(Config{Runs: runstore.NewMemory(runstore.Options{}), Files: runstore.NewMemFileStore()})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, 5*time.Second) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	addr := ln.Addr().String()

	envelope := func(status, ct, body, code string) {
		t.Helper()
		assert.Equal(t, "application/json", ct, "%s %s", status, body)
		assert.Contains(t, body, `"code":"`+code+`"`)
		assert.Contains(t, body, `"request_id":"`)
	}
	status, ct, body := rawRequest(t, addr, "GET /api/health/live HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 100<<10)+"\r\n\r\n")
	assert.True(t, strings.HasPrefix(status, "431"), status)
	envelope(status, ct, body, CodeHeadersTooLarge)
	status, ct, body = rawRequest(t, addr, "GET /api/runs?q="+strings.Repeat("a", 20<<10)+" HTTP/1.1\r\nHost: x\r\n\r\n")
	assert.True(t, strings.HasPrefix(status, "414"), status)
	envelope(status, ct, body, CodeURITooLong)
	status, ct, body = rawRequest(t, addr, "GET /api/runs/%2e%2e/x HTTP/1.1\r\nHost: x\r\n\r\n")
	assert.True(t, strings.HasPrefix(status, "400"), status)
	envelope(status, ct, body, CodeBadRequest)

	// net/http's own answers, before any handler: documented, plain text.
	status, ct, _ = rawRequest(t, addr, "GET /api/%zz HTTP/1.1\r\nHost: x\r\n\r\n")
	assert.True(t, strings.HasPrefix(status, "400"), status)
	assert.NotEqual(t, "application/json", ct)
	status, _, _ = rawRequest(t, addr, "GET /api/health/live HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 2<<20)+"\r\n\r\n")
	assert.True(t, strings.HasPrefix(status, "431"), status)
}
