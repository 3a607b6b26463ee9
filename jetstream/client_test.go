package jetstream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
)

const testKey = "abcd1234efgh5678"

// sleeps records the waits a client asks for instead of sleeping.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func newClient(t *testing.T, url string, mod func(*jetstream.HTTPOptions)) (*jetstream.HTTPClient, *sleeps) {
	t.Helper()
	sl := &sleeps{}
	o := jetstream.HTTPOptions{BaseURL: url + "/", APIKey: testKey, Sleep: sl.sleep, Rand: func() float64 { return 0.5 }}
	if mod != nil {
		mod(&o)
	}
	c, err := jetstream.NewHTTPClient(o)
	require.NoError(t, err)
	return c, sl
}

func TestMaskKey(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "abcd1234efgh5678": "********5678", "dummy": "********", "12345678": "********", "123456789012345": "********",
		"js-secret-key-123-abcd": "********abcd",
	} {
		assert.Equal(t, want, jetstream.MaskKey(in), "MaskKey(%q)", in)
	}
}

func TestStubMode(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"JETSTREAM_STUB_MODE": "true"}, true},
		{map[string]string{"JETSTREAM_USE_STUBS": " ON "}, true},
		{map[string]string{"JETSTREAM_STUB_DATA": "false", "JETSTREAM_STUB_MODE": "true"}, false}, // the predecessor's precedence
		{map[string]string{"JETSTREAM_STUB_DATA": " ", "JETSTREAM_USE_STUBS": "1"}, true},
	}
	for _, tc := range tests {
		got, err := jetstream.StubMode(lookupIn(tc.env))
		require.NoError(t, err, "%v", tc.env)
		assert.Equal(t, tc.want, got, "%v", tc.env)
	}
	_, err := jetstream.StubMode(lookupIn(map[string]string{"JETSTREAM_STUB_MODE": "maybe"}))
	require.ErrorContains(t, err, `JETSTREAM_STUB_MODE="maybe"`)
}

func TestNewHTTPClientValidates(t *testing.T) {
	_, err := jetstream.NewHTTPClient(jetstream.HTTPOptions{BaseURL: "ftp://x", APIKey: "k"})
	assert.ErrorContains(t, err, "not an absolute http(s) URL")
	_, err = jetstream.NewHTTPClient(jetstream.HTTPOptions{BaseURL: "http://127.0.0.1:1"})
	assert.ErrorContains(t, err, "empty API key")
}

func TestClientAgainstFake(t *testing.T) {
	srv := jetstreamtest.NewServer(jetstreamtest.Options{APIKey: testKey, PageSize: 3})
	defer srv.Close()
	t0 := time.Date(2025, 11, 25, 14, 30, 0, 123456000, time.UTC)
	runs := jetstreamtest.GenerateRuns(7, t0, time.Minute, 1)
	srv.Add(runs...)
	c, _ := newClient(t, srv.URL, nil)
	ctx := context.Background()
	require.NoError(t, c.Health(ctx))

	var ids []string
	req := jetstream.ListRequest{Since: t0.Add(2 * time.Minute)}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		page, err := c.ListRuns(ctx, req)
		require.NoError(t, err)
		for _, r := range page.Runs {
			ids = append(ids, r.ID)
		}
		if page.Next == "" {
			break
		}
		req.Cursor = page.Next
	}
	assert.Equal(t, []string{"JS-1-0002", "JS-1-0003", "JS-1-0004", "JS-1-0005", "JS-1-0006"}, ids, "since is inclusive, pages are in time order")

	m, err := c.Run(ctx, "JS-1-0003")
	require.NoError(t, err)
	assert.Equal(t, runs[3].RunMetadata.PeakHP, m.PeakHP)
	assert.True(t, runs[3].Timestamp.Equal(m.Timestamp))

	body, err := c.Download(ctx, "JS-1-0003")
	require.NoError(t, err)
	data, err := io.ReadAll(body)
	require.NoError(t, err)
	require.NoError(t, body.Close())
	assert.Equal(t, runs[3].Data, data)

	require.NoError(t, c.MarkProcessed(ctx, "JS-1-0003"))
	assert.True(t, srv.Processed("JS-1-0003"))

	_, err = c.Run(ctx, "JS-404")
	assert.ErrorIs(t, err, jetstream.ErrNotFound)
	var je *jetstream.Error
	require.ErrorAs(t, err, &je)
	assert.Equal(t, http.StatusNotFound, je.StatusCode)
	assert.Equal(t, "JS-404", je.RunID)
}

// The since cursor is RFC 3339 and URL-encoded: the predecessor sent a raw
// "+00:00" that servers read as a space.
func TestListSinceIsEncoded(t *testing.T) {
	var rawQuery string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rawQuery = r.URL.RawQuery
		assert.Equal(t, "Bearer "+testKey, r.Header.Get("Authorization"))
		assert.Equal(t, "/api/v1/runs", r.URL.Path)
		io.WriteString(w, `{"runs":[{"id":"a","timestamp":"2025-11-25T14:30:00.123456+00:00","processed":false},{"id":"b","timestamp":"2025-11-25T14:31:00"}]}`)
	}))
	defer ts.Close()
	c, _ := newClient(t, ts.URL, nil)
	since := time.Date(2025, 11, 25, 14, 30, 0, 0, time.FixedZone("X", 3600))
	page, err := c.ListRuns(context.Background(), jetstream.ListRequest{Since: since, Limit: 50})
	require.NoError(t, err)
	assert.Equal(t, "limit=50&since=2025-11-25T13%3A30%3A00Z", rawQuery)
	require.Len(t, page.Runs, 2)
	assert.Equal(t, time.Date(2025, 11, 25, 14, 30, 0, 123456000, time.UTC), page.Runs[0].Timestamp)
	assert.Equal(t, time.Date(2025, 11, 25, 14, 31, 0, 0, time.UTC), page.Runs[1].Timestamp, "naive isoformat is UTC")
}

func TestTypedErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		header    map[string]string
		body      string
		kind      error
		retryable bool
		attempts  int
	}{
		{"401", 401, nil, `{"error":"bad key"}`, jetstream.ErrAuth, false, 1},
		{"403", 403, nil, "", jetstream.ErrAuth, false, 1},
		{"404", 404, nil, "", jetstream.ErrNotFound, false, 1},
		{"400", 400, nil, "", jetstream.ErrBadResponse, false, 1},
		{"429", 429, map[string]string{"Retry-After": "3"}, "", jetstream.ErrRateLimited, true, 4},
		{"500", 500, nil, "boom", jetstream.ErrServer, true, 4},
		{"503", 503, nil, "", jetstream.ErrServer, true, 4},
		{"bad json", 200, nil, "{not json", jetstream.ErrBadResponse, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hits int
			var mu sync.Mutex
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hits++
				mu.Unlock()
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer ts.Close()
			c, _ := newClient(t, ts.URL, nil)
			_, err := c.Run(context.Background(), "JS-1")
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.kind)
			assert.Equal(t, tc.retryable, jetstream.Retryable(err))
			var je *jetstream.Error
			require.ErrorAs(t, err, &je)
			assert.Equal(t, tc.attempts, je.Attempts+boolInt(je.Attempts == 0))
			assert.Equal(t, tc.attempts, hits)
			assert.NotContains(t, err.Error(), testKey)
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestNetworkErrorIsTyped(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close() // nothing listens there any more
	c, sl := newClient(t, url, func(o *jetstream.HTTPOptions) { o.Retry.MaxAttempts = 2 })
	err := c.Health(context.Background())
	assert.ErrorIs(t, err, jetstream.ErrNetwork)
	assert.True(t, jetstream.Retryable(err))
	assert.Len(t, sl.all(), 1)
}

func TestRetryBackoffJitterAndRetryAfter(t *testing.T) {
	srv := jetstreamtest.NewServer(jetstreamtest.Options{})
	defer srv.Close()
	srv.Add(jetstreamtest.GenerateRuns(1, time.Now(), time.Second, 2)...)
	srv.Inject(
		jetstreamtest.Fault{Kind: jetstreamtest.FaultStatus, Endpoint: jetstreamtest.EndpointRun, Status: 502},
		jetstreamtest.Fault{Kind: jetstreamtest.FaultStatus, Endpoint: jetstreamtest.EndpointRun},
		jetstreamtest.Fault{Kind: jetstreamtest.FaultRateLimit, Endpoint: jetstreamtest.EndpointRun, RetryAfter: "7"},
	)
	var rnd []float64 = []float64{0, 0.999}
	var i int
	c, sl := newClient(t, srv.URL, func(o *jetstream.HTTPOptions) {
		o.Retry = jetstream.RetryPolicy{MaxAttempts: 4, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
		o.Rand = func() float64 { v := rnd[i%len(rnd)]; i++; return v }
	})
	_, err := c.Run(context.Background(), "JS-2-0000")
	require.NoError(t, err, "the fourth attempt succeeds")
	waits := sl.all()
	require.Len(t, waits, 3)
	assert.Equal(t, 50*time.Millisecond, waits[0], "attempt 1: 100ms with jitter drawn 0 -> 50ms")
	assert.InDelta(t, float64(200*time.Millisecond), float64(waits[1]), float64(time.Millisecond), "attempt 2: 200ms, jitter ~1")
	assert.Equal(t, 7*time.Second, waits[2], "Retry-After wins")
	assert.Equal(t, 4, srv.Requests(jetstreamtest.EndpointRun))
}

func TestRetryAfterTooLongIsReturned(t *testing.T) {
	srv := jetstreamtest.NewServer(jetstreamtest.Options{})
	defer srv.Close()
	srv.Inject(jetstreamtest.Fault{Kind: jetstreamtest.FaultRateLimit, RetryAfter: "600"})
	c, sl := newClient(t, srv.URL, nil)
	_, err := c.ListRuns(context.Background(), jetstream.ListRequest{})
	var je *jetstream.Error
	require.ErrorAs(t, err, &je)
	assert.ErrorIs(t, err, jetstream.ErrRateLimited)
	assert.Equal(t, 10*time.Minute, je.RetryAfter)
	assert.Empty(t, sl.all(), "a wait beyond MaxRetryAfter is the caller's to schedule")
}

func TestBackoffPolicy(t *testing.T) {
	p := jetstream.RetryPolicy{BaseDelay: time.Second, MaxDelay: 5 * time.Second, NoJitter: true}
	var got []time.Duration
	for a := 1; a <= 5; a++ {
		got = append(got, p.Backoff(a, nil))
	}
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}, got)
	p.NoJitter = false
	for _, r := range []float64{0, 0.5, 0.999999} {
		d := p.Backoff(2, func() float64 { return r })
		assert.GreaterOrEqual(t, d, time.Second)
		assert.Less(t, d, 2*time.Second)
	}
}

func TestTimeoutIsNetworkError(t *testing.T) {
	srv := jetstreamtest.NewServer(jetstreamtest.Options{})
	defer srv.Close()
	srv.Inject(jetstreamtest.Fault{Kind: jetstreamtest.FaultStall, Times: 2})
	c, sl := newClient(t, srv.URL, func(o *jetstream.HTTPOptions) {
		o.Timeout = 50 * time.Millisecond
		o.Retry.MaxAttempts = 2
	})
	err := c.Health(context.Background()) // the stall outlasts the test: only the timeout ends it
	assert.ErrorIs(t, err, jetstream.ErrNetwork)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Len(t, sl.all(), 1)
}

func TestCallerCancellationIsNotRetried(t *testing.T) {
	srv := jetstreamtest.NewServer(jetstreamtest.Options{})
	defer srv.Close()
	srv.Inject(jetstreamtest.Fault{Kind: jetstreamtest.FaultStall})
	c, sl := newClient(t, srv.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.ListRuns(ctx, jetstream.ListRequest{})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, jetstream.ErrNetwork)
	assert.Empty(t, sl.all())
}

func TestDownloadLimitsAndTruncation(t *testing.T) {
	srv := jetstreamtest.NewServer(jetstreamtest.Options{})
	defer srv.Close()
	runs := jetstreamtest.GenerateRuns(1, time.Now(), time.Second, 3)
	srv.Add(runs...)
	id := runs[0].ID
	ctx := context.Background()

	t.Run("Content-Length over the limit", func(t *testing.T) {
		c, _ := newClient(t, srv.URL, func(o *jetstream.HTTPOptions) { o.MaxDownloadBytes = 1000 })
		_, err := c.Download(ctx, id)
		assert.ErrorIs(t, err, jetstream.ErrTooLarge)
		assert.False(t, jetstream.Retryable(err))
	})
	t.Run("streamed body over the limit", func(t *testing.T) {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for range 100 { // chunked: no Content-Length to refuse up front
				w.Write(bytes.Repeat([]byte("x"), 100))
				w.(http.Flusher).Flush()
			}
		}))
		defer ts.Close()
		c, _ := newClient(t, ts.URL, func(o *jetstream.HTTPOptions) { o.MaxDownloadBytes = 1234 })
		body, err := c.Download(ctx, id)
		require.NoError(t, err)
		defer body.Close()
		n, err := io.Copy(io.Discard, body)
		assert.ErrorIs(t, err, jetstream.ErrTooLarge)
		assert.Equal(t, int64(1234), n)
	})
	t.Run("truncated", func(t *testing.T) {
		srv.Inject(jetstreamtest.Fault{Kind: jetstreamtest.FaultTruncate, RunID: id})
		c, _ := newClient(t, srv.URL, nil)
		body, err := c.Download(ctx, id)
		require.NoError(t, err)
		defer body.Close()
		n, err := io.Copy(io.Discard, body)
		assert.ErrorIs(t, err, jetstream.ErrNetwork)
		assert.True(t, jetstream.Retryable(err))
		assert.Less(t, n, int64(len(runs[0].Data)))
		assert.ErrorContains(t, err, "truncated at byte")
	})
	t.Run("JSON response over the limit", func(t *testing.T) {
		c, _ := newClient(t, srv.URL, func(o *jetstream.HTTPOptions) { o.MaxResponseBytes = 20 })
		_, err := c.Run(ctx, id)
		assert.ErrorIs(t, err, jetstream.ErrTooLarge)
	})
}

// The key never reaches a log line or an error message.
func TestKeyNeverLogged(t *testing.T) {
	srv := jetstreamtest.NewServer(jetstreamtest.Options{APIKey: testKey})
	defer srv.Close()
	srv.Inject(jetstreamtest.Fault{Kind: jetstreamtest.FaultStatus, Times: 2})
	var buf bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, _ := newClient(t, srv.URL, func(o *jetstream.HTTPOptions) { o.Logger = lg })
	require.NoError(t, c.Health(context.Background()))
	wrong, _ := newClient(t, srv.URL, func(o *jetstream.HTTPOptions) { o.Logger = lg; o.APIKey = "zzzz9999yyyy8888" })
	err := wrong.Health(context.Background())
	assert.ErrorIs(t, err, jetstream.ErrAuth)
	lg.Info("client", "client", c.String(), "options", jetstream.HTTPOptions{BaseURL: srv.URL, APIKey: testKey},
		"config", jetstream.Config{APIURL: srv.URL, APIKey: testKey})
	out := buf.String() + err.Error()
	assert.Contains(t, out, "retrying")
	assert.Contains(t, out, "********5678")
	assert.NotContains(t, out, testKey)
	assert.False(t, strings.Contains(out, "efgh"), out)
}

func TestErrorMessage(t *testing.T) {
	err := &jetstream.Error{Op: "download", RunID: "JS-1", Kind: jetstream.ErrServer, StatusCode: 503, Attempts: 4, Body: "busy"}
	assert.Equal(t, `jetstream: download run "JS-1": server error (HTTP 503) after 4 attempts: busy`, err.Error())
	assert.True(t, errors.Is(err, jetstream.ErrServer))
}

// A JSON body that breaks off is a network failure, retried.
func TestBrokenJSONBodyIsRetried(t *testing.T) {
	var mu sync.Mutex
	n := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		if first {
			w.Header().Set("Content-Length", "1000")
			io.WriteString(w, `{"runs":[{"id":"a"`)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, `{"runs":[{"id":"a"}]}`)
	}))
	defer ts.Close()
	c, sl := newClient(t, ts.URL, nil)
	page, err := c.ListRuns(context.Background(), jetstream.ListRequest{})
	require.NoError(t, err)
	assert.Len(t, page.Runs, 1)
	assert.Len(t, sl.all(), 1, "one retry")
	assert.Equal(t, 2, n)
}

// Run ids are path-escaped: an id cannot reach another endpoint.
func TestRunIDIsEscaped(t *testing.T) {
	var path string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.EscapedPath()
		io.WriteString(w, `{}`)
	}))
	defer ts.Close()
	c, _ := newClient(t, ts.URL, nil)
	m, err := c.Run(context.Background(), "../a b/c?d")
	require.NoError(t, err)
	assert.Equal(t, "/api/v1/runs/..%2Fa%20b%2Fc%3Fd", path)
	assert.Equal(t, "../a b/c?d", m.ID, "an absent id takes the requested one")
}
