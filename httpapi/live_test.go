package httpapi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/jetdrive/wire"
	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeJD is a JetDrive whose samples the test sends.
type fakeJD struct {
	samples chan dyno.Sample
}

func (f *fakeJD) Layout() dyno.Layout {
	return dyno.Layout{Name: "fake", Format: "jetdrive", Cylinders: 2,
		Channels: dyno.NewChannelSet(dyno.ChanRPM, dyno.ChanMAP, dyno.ChanAFR)}
}

func (f *fakeJD) Next(ctx context.Context, s *dyno.Sample) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case v, ok := <-f.samples:
		if !ok {
			return io.EOF
		}
		*s = v
		return nil
	}
}

func (f *fakeJD) Stats() jetdrive.Stats {
	return jetdrive.Stats{HostID: 7, Datagrams: 10, Providers: []jetdrive.ProviderStats{{
		Host: 0x1234, Name: "Dyno", Addr: netip.MustParseAddrPort("127.0.0.1:22344"), Messages: 9,
		Channels: []jetdrive.ChannelStats{
			{ChannelDef: wire.ChannelDef{ID: 1, Name: "RPM"}, Known: true, Count: 5, Last: 3000, RateHz: 20, Field: "rpm"},
			{ChannelDef: wire.ChannelDef{ID: 2, Name: "Broken"}, Last: float32(math.NaN()), RateHz: math.Inf(1)},
		},
	}}}
}

func (f *fakeJD) Mapping() []jetdrive.Assignment {
	return []jetdrive.Assignment{{Field: jetdrive.Field{Channel: dyno.ChanRPM}, Source: jetdrive.ChannelRef{Host: 0x1234, Provider: "Dyno", ID: 1, Name: "RPM"},
		Confidence: 0.8, Convert: func(v float64) float64 { return v }}}
}

func TestJetDriveRoutes(t *testing.T) {
	jd := &fakeJD{samples: make(chan dyno.Sample)}
	m, err := metrics.New(metrics.Options{Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	e := newEnv(t, func(c *Config) { c.JetDrive = jd; c.Metrics = m }) // streams through the metrics writer too
	r := e.get(t, "/api/jetdrive/providers")
	require.Equal(t, 200, r.code, "body %s", r.body)
	assert.Contains(t, string(r.body), `"name":"Dyno"`)
	assert.Contains(t, string(r.body), `"last":null`, "NaN becomes null")
	r = e.get(t, "/api/jetdrive/channels")
	require.Equal(t, 200, r.code, "body %s", r.body)
	assert.Contains(t, string(r.body), `"channel":"RPM"`)

	live := e.get(t, "/api/jetdrive/live").json(t)
	assert.Nil(t, live["values"])

	// Stream: open it, then feed samples.
	req, err := http.NewRequest("GET", e.ts.URL+"/api/jetdrive/live/stream", nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req = req.WithContext(ctx)
	res, err := e.ts.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	smp := dyno.NewSample()
	smp.RPM, smp.MAP, smp.AFR[0] = 3000, 80, 13.1
	jd.samples <- smp
	sc := bufio.NewScanner(res.Body)
	var got []string
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "data: ") {
			got = append(got, line)
			break
		}
	}
	require.Len(t, got, 1)
	assert.Contains(t, got[0], `"rpm":3000`)
	assert.Contains(t, got[0], `"afr":[13.1,null]`)
	assert.Contains(t, got[0], `"torque":null`)

	live = e.get(t, "/api/jetdrive/live").json(t)
	require.NotNil(t, live["values"])
	assert.Equal(t, 3000.0, live["values"].(map[string]any)["rpm"])
}

func TestLiveRoutesNotConfigured(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{"/api/jetdrive/providers", "/api/jetdrive/channels", "/api/jetdrive/live", "/api/jetdrive/live/stream", "/api/jetstream/status", "/api/jetstream/events"} {
		r := e.get(t, p)
		assert.Equal(t, 503, r.code, p)
		assert.Equal(t, CodeNotConfigured, r.errCode(t))
	}
	assert.Equal(t, 503, e.do(t, "POST", "/api/jetstream/sync", nil, nil).code)
	cfg := e.get(t, "/api/jetstream/config").json(t)
	assert.Equal(t, false, cfg["configured"])
}

func TestStreamLimit(t *testing.T) {
	jd := &fakeJD{samples: make(chan dyno.Sample)}
	e := newEnv(t, func(c *Config) { c.JetDrive = jd; c.MaxStreams = 1 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/api/jetdrive/live/stream", nil)
	res, err := e.ts.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	r := e.get(t, "/api/jetdrive/live/stream")
	assert.Equal(t, 503, r.code)
	assert.Contains(t, string(r.body), "too many live streams")
}

// fakeJS is a Jetstream poller.
type fakeJS struct {
	mu        sync.Mutex
	subs      []chan jetstream.Event
	fail      bool
	statusErr string // upstream error text in the status
}

func (f *fakeJS) Status() jetstream.PollerStatus {
	return jetstream.PollerStatus{Running: true, Connected: f.statusErr == "", LastPoll: time.Unix(1700000000, 0), Queued: 2,
		Error: f.statusErr}
}

func (f *fakeJS) Poll(ctx context.Context) (jetstream.PollResult, error) {
	if f.fail {
		return jetstream.PollResult{}, errors.New("dial tcp 10.1.2.3:443: secret detail")
	}
	f.mu.Lock()
	for _, s := range f.subs {
		s <- jetstream.Event{RunID: "run_1", Status: jetstream.StatusQueued, Time: time.Unix(1700000001, 0)}
	}
	f.mu.Unlock()
	return jetstream.PollResult{New: []string{"run_1"}}, nil
}

func (f *fakeJS) Subscribe(n int) (<-chan jetstream.Event, func()) {
	c := make(chan jetstream.Event, n)
	f.mu.Lock()
	f.subs = append(f.subs, c)
	f.mu.Unlock()
	return c, func() {}
}

func TestJetstreamRoutes(t *testing.T) {
	js := &fakeJS{}
	e := newEnv(t, func(c *Config) {
		c.Jetstream = js
		c.JetstreamConfig = jetstream.Config{APIURL: "https://api.example", APIKey: "abcdefghijklmnop", PollInterval: 30 * time.Second, Enabled: true}
	})
	st := e.get(t, "/api/jetstream/status").json(t)
	assert.Equal(t, true, st["connected"])
	assert.EqualValues(t, 2, st["pending_runs"])
	cfg := e.get(t, "/api/jetstream/config")
	assert.NotContains(t, string(cfg.body), "abcdefghijklmnop")
	assert.Contains(t, string(cfg.body), "****")
	assert.EqualValues(t, 30, cfg.json(t)["poll_interval_seconds"])
	assert.Equal(t, 405, e.do(t, "PUT", "/api/jetstream/config", strings.NewReader(`{"api_key":"x"}`), nil).code, "no route writes the config")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/api/jetstream/events", nil)
	res, err := e.ts.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	require.True(t, sc.Scan())
	assert.Equal(t, "event: connected", sc.Text())
	require.Eventually(t, func() bool { js.mu.Lock(); defer js.mu.Unlock(); return len(js.subs) == 1 }, time.Second, time.Millisecond)

	sync := e.do(t, "POST", "/api/jetstream/sync", nil, nil)
	require.Equal(t, 200, sync.code, "body %s", sync.body)
	assert.EqualValues(t, 1, sync.json(t)["new_runs_found"])
	found := false
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") && strings.Contains(sc.Text(), "run_1") {
			found = true
			break
		}
	}
	assert.True(t, found)

	js.fail = true
	r := e.do(t, "POST", "/api/jetstream/sync", nil, nil)
	assert.Equal(t, 502, r.code)
	assert.Equal(t, CodeUpstream, r.errCode(t))
	assert.NotContains(t, string(r.body), "secret detail")
}

// TestActiveSessions: dynoai_active_sessions counts the open live JetDrive
// streams; a stream refused for lack of slots does not count, and a
// closed one stops counting.
func TestActiveSessions(t *testing.T) {
	jd := &fakeJD{samples: make(chan dyno.Sample)}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Options{Registerer: reg})
	require.NoError(t, err)
	e := newEnv(t, func(c *Config) { c.JetDrive = jd; c.Metrics = m; c.MaxStreams = 2 })
	sessions := func() float64 {
		mf, err := reg.Gather()
		require.NoError(t, err)
		for _, f := range mf {
			if f.GetName() == "dynoai_active_sessions" {
				return f.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("dynoai_active_sessions not exported")
		return 0
	}
	open := func() context.CancelFunc {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/api/jetdrive/live/stream", nil)
		res, err := e.ts.Client().Do(req)
		require.NoError(t, err)
		require.Equal(t, 200, res.StatusCode)
		t.Cleanup(func() { res.Body.Close() })
		return cancel
	}
	assert.Equal(t, 0.0, sessions())
	first := open()
	second := open()
	defer second()
	// The handler counts the session right after sending the headers.
	require.Eventually(t, func() bool { return sessions() == 2 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 503, e.get(t, "/api/jetdrive/live/stream").code, "no slot left")
	assert.Equal(t, 2.0, sessions(), "a refused stream is no session")
	first()
	require.Eventually(t, func() bool { return sessions() == 1 }, 5*time.Second, 10*time.Millisecond,
		"a closed stream ends its session")
	second()
	require.Eventually(t, func() bool { return sessions() == 0 }, 5*time.Second, 10*time.Millisecond)
}
