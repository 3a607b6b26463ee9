package jetstreammetrics_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
	"github.com/dynoai/dynoai/metrics"
	"github.com/dynoai/dynoai/metrics/jetstreammetrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countRows is a processor that reads every sample.
var countRows = jetstream.ProcessorFunc(func(ctx context.Context, _ jetstream.RunMetadata, src dyno.Source) (jetstream.Outcome, error) {
	var s dyno.Sample
	for {
		if err := src.Next(ctx, &s); err != nil {
			if errors.Is(err, io.EOF) {
				return jetstream.Outcome{}, nil
			}
			return jetstream.Outcome{}, err
		}
	}
})

// TestHooksRecordARealPoller drives a poller against the fake Jetstream
// server: a run that completes, one that fails for good (no MAP column),
// one whose download breaks off once and completes on its retry, and a
// poll whose listing fails.
func TestHooksRecordARealPoller(t *testing.T) {
	srv := jetstreamtest.NewServer(jetstreamtest.Options{APIKey: "key"})
	defer srv.Close()
	runs := jetstreamtest.GenerateRuns(3, time.Now().Add(-time.Hour), time.Minute, 3)
	runs[1].Data = jetstreamtest.Pull{PeakHP: 80, PeakTorque: 90, Dialect: jetstreamtest.DialectNoMAP}.CSV()
	srv.Add(runs...)
	srv.Inject(jetstreamtest.Fault{Kind: jetstreamtest.FaultTruncate, RunID: runs[2].ID})

	client, err := jetstream.NewHTTPClient(jetstream.HTTPOptions{BaseURL: srv.URL, APIKey: "key",
		Retry: jetstream.RetryPolicy{MaxAttempts: 1}})
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	m, err := metrics.New(metrics.Options{Registerer: reg})
	require.NoError(t, err)
	t0 := time.Now()
	var clock atomic.Int64 // nanoseconds past t0: the poller's clock, moved by the test
	now := func() time.Time { return t0.Add(time.Duration(clock.Load())) }
	p, err := jetstream.NewPoller(client, jetstream.NewMemoryStore(), countRows, jetstream.PollerOptions{
		Retry: jetstream.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond, NoJitter: true},
		Hooks: jetstreammetrics.Hooks(m), Now: now})
	require.NoError(t, err)

	res, err := p.Poll(context.Background())
	require.NoError(t, err)
	require.Equal(t, []string{runs[2].ID}, res.Retrying)
	clock.Add(int64(time.Second)) // the retry is due
	res, err = p.Poll(context.Background())
	require.NoError(t, err)
	require.Equal(t, []string{runs[2].ID}, res.Processed)
	srv.Inject(jetstreamtest.Fault{Kind: jetstreamtest.FaultStatus, Endpoint: jetstreamtest.EndpointList, Status: 503})
	_, err = p.Poll(context.Background())
	require.ErrorIs(t, err, jetstream.ErrServer)

	got := gather(t, reg)
	assert.Equal(t, map[string]float64{
		`dynoai_jetstream_runs_total{status="pending"}`:    3,
		`dynoai_jetstream_runs_total{status="processing"}`: 4, // the broken download, and its retry
		`dynoai_jetstream_runs_total{status="complete"}`:   2,
		`dynoai_jetstream_runs_total{status="error"}`:      1,
		`dynoai_jetstream_poll_failures_total`:             1,
		`dynoai_jetstream_poll_duration_seconds_count`:     3, // every listing, the failed one too
	}, got)
}

// gather returns the Jetstream series of reg as name{labels} → value
// (counters, and the count of histograms).
func gather(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mf, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range mf {
		if !strings.HasPrefix(f.GetName(), "dynoai_jetstream_") {
			continue
		}
		for _, mm := range f.GetMetric() {
			name := f.GetName()
			var labels []string
			for _, l := range mm.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case mm.GetCounter() != nil:
				out[name] = mm.GetCounter().GetValue()
			case mm.GetHistogram() != nil:
				out[name+"_count"] = float64(mm.GetHistogram().GetSampleCount())
				assert.Positive(t, mm.GetHistogram().GetSampleSum(), name)
			}
		}
	}
	return out
}

// TestHooksWithoutMetrics: a nil *metrics.Metrics gives hooks that record
// nothing and do not panic.
func TestHooksWithoutMetrics(t *testing.T) {
	h := jetstreammetrics.Hooks(nil)
	assert.NotPanics(t, func() {
		h.Listed(time.Second, jetstream.ErrServer)
		h.Event(jetstream.Event{Status: jetstream.StatusDone})
	})
}
