package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynosim"
	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/jetdrive/jetdrivetest"
	"github.com/dynoai/dynoai/runstore"
)

// busSource is a simulator as a dyno's bus carries it: no commanded AFR.
type busSource struct{ src dyno.Source }

func (b busSource) Layout() dyno.Layout {
	l := b.src.Layout()
	l.Channels &^= dyno.NewChannelSet(dyno.ChanAFRCommanded)
	return l
}

func (b busSource) Next(ctx context.Context, s *dyno.Sample) error {
	if err := b.src.Next(ctx, s); err != nil {
		return err
	}
	for c := range s.AFRCommanded {
		s.AFRCommanded[c] = dyno.Missing
	}
	return nil
}

// TestLiveSessionMulticast is the live path end to end on loopback: a
// JetDrive provider plays a simulated dyno session with a known VE error in
// real time over UDP multicast; the server's JetDrive client feeds a live
// session, which records each pull as a run analyzed by the queue and
// converges to the truth. It plays about 45 s of dyno time in real time:
// heavy (DYNOAI_HEAVY_TESTS=1, run once by .ci/run), budget 2 min.
func TestLiveSessionMulticast(t *testing.T) {
	heavy(t)
	jetdrivetest.EnsureLoopbackMulticast(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	c := newLiveCase(t)
	const pulls = 3
	var plan []dynosim.Step
	plan = append(plan, dynosim.HoldTPSStep(2000, 10, 3*time.Second)) // the session starts meanwhile
	for range pulls {
		plan = append(plan, dynosim.PullStep(2000, 5500), dynosim.DecelStep(5500, 2000, 0, 0))
	}
	sim, err := dynosim.New(dynosim.Config{Seed: 5, ECUVE: c.ecu, Noise: dynosim.TypicalNoise(), Plan: plan})
	require.NoError(t, err)

	port := jetdrivetest.Port(t)
	client, err := jetdrive.NewClient(ctx, jetdrive.ClientConfig{Net: jetdrivetest.Net(port), NegotiateWindow: 100 * time.Millisecond})
	require.NoError(t, err)
	defer client.Close()
	prov, err := jetdrive.NewProvider(ctx, jetdrive.ProviderConfig{Net: jetdrivetest.Net(port), Name: "Dyno sim",
		NegotiateWindow: 100 * time.Millisecond, ReplyInterval: 20 * time.Millisecond}, nil)
	require.NoError(t, err)
	defer prov.Close()

	e := newEnv(t, func(cfg *Config) { cfg.JetDrive = client })
	played := make(chan error, 1)
	go func() { played <- prov.Stream(ctx, busSource{sim}, jetdrive.StreamOptions{}) }()

	// Start the session once the bus carries the simulator's channels.
	deadline := time.Now().Add(20 * time.Second)
	for !client.Layout().Channels.Has(dyno.ChanAFR) || !client.Layout().Channels.Has(dyno.ChanTPS) {
		require.True(t, time.Now().Before(deadline), "the client never saw the provider's channels: %v", client.Layout().Channels)
		time.Sleep(20 * time.Millisecond)
	}
	r := e.postJSON(t, "/api/jetdrive/session", LiveSessionOptions{Target: c.targetTable(sim), Analysis: map[string]string{"clamp_percent": "15"}}, nil)
	require.Equal(t, http.StatusCreated, r.code, "body: %s", r.body)

	require.NoError(t, <-played)
	var v liveView
	deadline = time.Now().Add(20 * time.Second)
	for {
		v = liveSessionView(t, e)
		if len(v.Pulls) == pulls {
			break
		}
		require.True(t, time.Now().Before(deadline), "pulls recorded: %+v", v.Pulls)
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range v.Pulls {
		require.Empty(t, p.Error)
		run := e.wait(t, p.RunID)
		require.Equal(t, runstore.StatusCompleted, run.Status, "pull %d: %+v", p.Number, run.Error)
		require.Equal(t, runstore.SourceJetDrive, run.Source)
		var res struct {
			Corrected int `json:"cells_corrected"`
		}
		require.NoError(t, json.Unmarshal(run.Results, &res))
		require.Positive(t, res.Corrected, "pull %d corrected nothing", p.Number)
	}
	r = e.do(t, "POST", "/api/jetdrive/session/stop", nil, nil)
	require.Equal(t, http.StatusOK, r.code, "body: %s", r.body)
	require.NoError(t, json.Unmarshal(r.body, &v))
	require.Equal(t, "stopped", v.State)
	t.Logf("live multicast: %d samples received, %d dropped, %d pulls, in %v", v.Samples.Received, v.Samples.Dropped, len(v.Pulls), time.Since(start).Round(time.Second))
	require.Zero(t, v.Samples.Dropped)
	c.checkConverged(t, v)
}
