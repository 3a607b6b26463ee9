package jetstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client is the Jetstream API as DynoAI uses it. HTTPClient implements the
// assumed contract; another contract is one implementation of Client away.
// Every method is safe for concurrent use.
type Client interface {
	// Health returns nil when the service answers.
	Health(ctx context.Context) error
	// ListRuns returns one page of runs; follow RunPage.Next for the rest.
	ListRuns(ctx context.Context, req ListRequest) (RunPage, error)
	// Run returns one run's metadata.
	Run(ctx context.Context, id string) (RunMetadata, error)
	// Download streams a run's raw data (a CSV). The caller closes it. Reading
	// it fails with ErrNetwork if the transfer ends early and with ErrTooLarge
	// past the client's size limit.
	Download(ctx context.Context, id string) (io.ReadCloser, error)
	// MarkProcessed tells Jetstream the run has been processed. Marking a run
	// twice is harmless.
	MarkProcessed(ctx context.Context, id string) error
}

// RetryPolicy says how HTTPClient retries retryable failures (network,
// server, rate limit). The zero value means 4 attempts, 250 ms doubling to at
// most 30 s, with jitter, and Retry-After honoured up to 2 minutes.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts per call, first included; 0 means
	// 4 and 1 means no retry.
	MaxAttempts int
	// BaseDelay is the wait before the second attempt; it doubles after each
	// further attempt. 0 means 250 ms.
	BaseDelay time.Duration
	// MaxDelay caps the backoff; 0 means 30 s.
	MaxDelay time.Duration
	// NoJitter turns jitter off. With jitter (the default) each wait is drawn
	// uniformly from [d/2, d) so that many clients do not retry in step.
	NoJitter bool
	// MaxRetryAfter is the longest Retry-After the client waits for inside a
	// call; a longer one ends the call with ErrRateLimited and the wait in
	// Error.RetryAfter, for the caller to schedule. 0 means 2 minutes.
	MaxRetryAfter time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 4
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 250 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 30 * time.Second
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 2 * time.Minute
	}
	return p
}

// Backoff returns the wait before attempt number attempt+1 (attempt counts
// from 1), drawing jitter from rnd, a source of uniform numbers in [0, 1).
func (p RetryPolicy) Backoff(attempt int, rnd func() float64) time.Duration {
	p = p.withDefaults()
	d := float64(p.BaseDelay) * math.Pow(2, float64(max(attempt-1, 0)))
	d = min(d, float64(p.MaxDelay))
	if !p.NoJitter && rnd != nil {
		d = d/2 + rnd()*d/2
	}
	return time.Duration(d)
}

// HTTPOptions configures an HTTPClient. Only BaseURL and APIKey are needed.
type HTTPOptions struct {
	// BaseURL is the API root, for example "https://api.jetstream.dynojet.com".
	// A trailing slash is removed.
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <key>". It is never logged.
	APIKey string
	// HTTPClient sends the requests; nil means a new http.Client without a
	// global timeout (the per-call timeouts below apply).
	HTTPClient *http.Client
	// Timeout bounds each JSON call attempt; 0 means 30 s.
	Timeout time.Duration
	// DownloadTimeout bounds a download, body included; 0 means 60 s.
	DownloadTimeout time.Duration
	// MaxResponseBytes caps a JSON response body; 0 means 8 MiB.
	MaxResponseBytes int64
	// MaxDownloadBytes caps a download; 0 means 64 MiB.
	MaxDownloadBytes int64
	// Retry is the retry policy.
	Retry RetryPolicy
	// Logger receives a debug line per retry; nil discards.
	Logger *slog.Logger
	// Sleep waits d or until ctx ends; nil means a real timer. Tests inject one.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns uniform numbers in [0, 1) for jitter; nil means math/rand/v2.
	Rand func() float64
	// Now is the clock used to read an HTTP-date Retry-After; nil means time.Now.
	Now func() time.Time
}

// LogValue makes slog print the options with the key masked.
func (o HTTPOptions) LogValue() slog.Value {
	return slog.GroupValue(slog.String("base_url", o.BaseURL), slog.String("api_key", MaskKey(o.APIKey)))
}

// HTTPClient is the Client over Jetstream's assumed HTTP contract (spec §1.3):
// GET /api/v1/health, GET /api/v1/runs?since=&cursor=&limit=,
// GET /api/v1/runs/{id}, GET /api/v1/runs/{id}/download and
// POST /api/v1/runs/{id}/processed.
type HTTPClient struct {
	base *url.URL
	key  string
	hc   *http.Client
	o    HTTPOptions
	log  *slog.Logger
}

var _ Client = (*HTTPClient)(nil)

// NewHTTPClient returns a client for o.BaseURL. It fails if the URL is not an
// absolute http or https URL or the key is empty.
func NewHTTPClient(o HTTPOptions) (*HTTPClient, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(o.BaseURL), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("jetstream: base URL %q is not an absolute http(s) URL", o.BaseURL)
	}
	if o.APIKey == "" {
		return nil, errors.New("jetstream: empty API key")
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.DownloadTimeout <= 0 {
		o.DownloadTimeout = 60 * time.Second
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 8 << 20
	}
	if o.MaxDownloadBytes <= 0 {
		o.MaxDownloadBytes = 64 << 20
	}
	o.Retry = o.Retry.withDefaults()
	if o.Sleep == nil {
		o.Sleep = sleepContext
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	lg := o.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	return &HTTPClient{base: u, key: o.APIKey, hc: hc, o: o, log: lg}, nil
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// String describes the client with its key masked.
func (c *HTTPClient) String() string {
	return fmt.Sprintf("jetstream.HTTPClient{%s, key %s}", c.base, MaskKey(c.key))
}

func (c *HTTPClient) endpoint(q url.Values, segs ...string) string {
	u := *c.base
	p := u.Path + "/api/v1"
	raw := p
	for _, s := range segs {
		p += "/" + s
		raw += "/" + url.PathEscape(s)
	}
	u.Path, u.RawPath = p, raw
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// call is one logical API call: it builds a request per attempt, sends it,
// classifies the outcome and retries retryable failures. On success it
// returns the response (the caller closes its body) and a cancel func that
// ends the attempt's timeout.
type call struct {
	op, runID string
	method    string
	url       string
	accept    string
	timeout   time.Duration
	// consume, when set, reads a 2xx response inside the attempt, so that a
	// body that breaks off is retried like any network failure. It closes
	// the body.
	consume func(resp *http.Response) *Error
}

func (c *HTTPClient) do(ctx context.Context, k call) (*http.Response, context.CancelFunc, error) {
	var last *Error
	for attempt := 1; ; attempt++ {
		resp, cancel, err := c.attempt(ctx, k)
		if err == nil && k.consume != nil {
			err = k.consume(resp)
			cancel()
			if err != nil {
				err.Op, err.RunID = k.op, k.runID
			}
		}
		if err == nil {
			return resp, cancel, nil
		}
		if ctx.Err() != nil { // the caller gave up: report that, not a retryable failure
			return nil, nil, fmt.Errorf("jetstream: %s: %w", k.op, ctx.Err())
		}
		last = err
		last.Attempts = attempt
		if !Retryable(err) || attempt >= c.o.Retry.MaxAttempts {
			return nil, nil, last
		}
		wait := c.o.Retry.Backoff(attempt, c.o.Rand)
		if err.RetryAfter > 0 {
			if err.RetryAfter > c.o.Retry.MaxRetryAfter {
				return nil, nil, last
			}
			wait = err.RetryAfter
		}
		c.log.DebugContext(ctx, "jetstream: retrying", "op", k.op, "run", k.runID, "attempt", attempt, "wait", wait, "err", err.Error())
		if err := c.o.Sleep(ctx, wait); err != nil {
			return nil, nil, fmt.Errorf("jetstream: %s: %w", k.op, err)
		}
	}
}

func (c *HTTPClient) attempt(ctx context.Context, k call) (*http.Response, context.CancelFunc, *Error) {
	actx, cancel := context.WithTimeout(ctx, k.timeout)
	fail := func(e *Error) (*http.Response, context.CancelFunc, *Error) {
		cancel()
		e.Op, e.RunID = k.op, k.runID
		return nil, nil, e
	}
	req, err := http.NewRequestWithContext(actx, k.method, k.url, nil)
	if err != nil {
		return fail(&Error{Kind: ErrBadResponse, Err: err})
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", k.accept)
	resp, err := c.hc.Do(req)
	if err != nil {
		return fail(&Error{Kind: ErrNetwork, Err: scrubURLError(err)})
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, cancel, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 32<<10))
	resp.Body.Close()
	e := &Error{StatusCode: resp.StatusCode, Body: snippet(body)}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		e.Kind = ErrAuth
	case resp.StatusCode == http.StatusNotFound:
		e.Kind = ErrNotFound
	case resp.StatusCode == http.StatusTooManyRequests:
		e.Kind = ErrRateLimited
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.o.Now())
	case resp.StatusCode >= 500:
		e.Kind = ErrServer
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.o.Now())
	default:
		e.Kind = ErrBadResponse
	}
	return fail(e)
}

// scrubURLError drops the URL from a *url.Error: the message stays short and
// the query never reaches a log.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 256 {
		s = s[:256] + "..."
	}
	return s
}

// parseRetryAfter reads a Retry-After header: delta seconds or an HTTP date.
// It returns 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 1<<31)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func (c *HTTPClient) getJSON(ctx context.Context, k call, dst any) error {
	k.method, k.accept, k.timeout = http.MethodGet, "application/json", c.o.Timeout
	var decodeErr *Error // not retried: set by consume, returned after do
	k.consume = func(resp *http.Response) *Error {
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, c.o.MaxResponseBytes+1))
		if err != nil {
			return &Error{Kind: ErrNetwork, StatusCode: resp.StatusCode, Err: fmt.Errorf("reading the body: %w", scrubURLError(err))}
		}
		if int64(len(body)) > c.o.MaxResponseBytes {
			decodeErr = &Error{Kind: ErrTooLarge, StatusCode: resp.StatusCode, Err: fmt.Errorf("body exceeds %d bytes", c.o.MaxResponseBytes)}
			return nil
		}
		if len(bytes.TrimSpace(body)) == 0 {
			body = []byte("{}")
		}
		if err := json.Unmarshal(body, dst); err != nil {
			decodeErr = &Error{Kind: ErrBadResponse, StatusCode: resp.StatusCode, Err: fmt.Errorf("invalid JSON: %w", err)}
		}
		return nil
	}
	if _, _, err := c.do(ctx, k); err != nil {
		return err
	}
	if decodeErr != nil {
		decodeErr.Op, decodeErr.RunID, decodeErr.Attempts = k.op, k.runID, 1
		return decodeErr
	}
	return nil
}

// Health calls GET /api/v1/health; any 2xx is healthy.
func (c *HTTPClient) Health(ctx context.Context) error {
	resp, cancel, err := c.do(ctx, call{op: "health", method: http.MethodGet, url: c.endpoint(nil, "health"),
		accept: "application/json", timeout: c.o.Timeout})
	if err != nil {
		return err
	}
	defer cancel()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.Body.Close()
}

// ListRuns calls GET /api/v1/runs with since (RFC 3339, UTC), cursor and limit.
func (c *HTTPClient) ListRuns(ctx context.Context, req ListRequest) (RunPage, error) {
	q := url.Values{}
	if !req.Since.IsZero() {
		q.Set("since", req.Since.UTC().Format(time.RFC3339Nano))
	}
	if req.Cursor != "" {
		q.Set("cursor", req.Cursor)
	}
	if req.Limit > 0 {
		q.Set("limit", strconv.Itoa(req.Limit))
	}
	var page RunPage
	if err := c.getJSON(ctx, call{op: "list runs", url: c.endpoint(q, "runs")}, &page); err != nil {
		return RunPage{}, err
	}
	for i, r := range page.Runs {
		if r.ID == "" {
			return RunPage{}, &Error{Op: "list runs", Kind: ErrBadResponse, Err: fmt.Errorf("run %d of the page has no id", i)}
		}
	}
	return page, nil
}

// Run calls GET /api/v1/runs/{id}. A response without an id takes id.
func (c *HTTPClient) Run(ctx context.Context, id string) (RunMetadata, error) {
	var m RunMetadata
	if err := c.getJSON(ctx, call{op: "run metadata", runID: id, url: c.endpoint(nil, "runs", id)}, &m); err != nil {
		return RunMetadata{}, err
	}
	if m.ID == "" {
		m.ID = id
	}
	return m, nil
}

// Download calls GET /api/v1/runs/{id}/download. Failures before the body
// starts are retried; the body is then a stream bounded by DownloadTimeout and
// MaxDownloadBytes whose early end reads as ErrNetwork.
func (c *HTTPClient) Download(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, cancel, err := c.do(ctx, call{op: "download", runID: id, method: http.MethodGet,
		url: c.endpoint(nil, "runs", id, "download"), accept: "application/octet-stream", timeout: c.o.DownloadTimeout})
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > c.o.MaxDownloadBytes {
		resp.Body.Close()
		cancel()
		return nil, &Error{Op: "download", RunID: id, Kind: ErrTooLarge, StatusCode: resp.StatusCode,
			Err: fmt.Errorf("Content-Length %d exceeds %d bytes", resp.ContentLength, c.o.MaxDownloadBytes)}
	}
	return &download{id: id, body: resp.Body, cancel: cancel, left: c.o.MaxDownloadBytes, limit: c.o.MaxDownloadBytes}, nil
}

// MarkProcessed calls POST /api/v1/runs/{id}/processed with no body.
func (c *HTTPClient) MarkProcessed(ctx context.Context, id string) error {
	resp, cancel, err := c.do(ctx, call{op: "mark processed", runID: id, method: http.MethodPost,
		url: c.endpoint(nil, "runs", id, "processed"), accept: "application/json", timeout: c.o.Timeout})
	if err != nil {
		return err
	}
	defer cancel()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.Body.Close()
}

// download is a download's body: it counts bytes against the limit and turns
// transport failures into typed errors naming the byte offset.
type download struct {
	id     string
	body   io.ReadCloser
	cancel context.CancelFunc
	read   int64
	left   int64
	limit  int64
	err    error
}

func (d *download) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if int64(len(p)) > d.left+1 {
		p = p[:d.left+1]
	}
	n, err := d.body.Read(p)
	if int64(n) > d.left {
		n = int(d.left)
		d.err = &Error{Op: "download", RunID: d.id, Kind: ErrTooLarge, Err: fmt.Errorf("body exceeds %d bytes", d.limit)}
		d.read += int64(n)
		d.left = 0
		return n, d.err
	}
	d.read += int64(n)
	d.left -= int64(n)
	switch {
	case err == nil || err == io.EOF:
		return n, err
	case errors.Is(err, io.ErrUnexpectedEOF):
		d.err = &Error{Op: "download", RunID: d.id, Kind: ErrNetwork, Err: fmt.Errorf("truncated at byte %d: %w", d.read, err)}
	default:
		d.err = &Error{Op: "download", RunID: d.id, Kind: ErrNetwork, Err: fmt.Errorf("at byte %d: %w", d.read, err)}
	}
	return n, d.err
}

func (d *download) Close() error {
	err := d.body.Close()
	d.cancel()
	return err
}
