package jetstream_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
	"github.com/dynoai/dynoai/jetstream/runstorestate"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/runstore/sqlstore"
	"github.com/dynoai/dynoai/ve"
)

// veProcessor analyzes a run with the default VE analyzer and summarizes
// the mean correction per cylinder over the cells with evidence.
func veProcessor(a ve.Analyzer) jetstream.Processor {
	return jetstream.ProcessorFunc(func(ctx context.Context, run jetstream.RunMetadata, src dyno.Source) (jetstream.Outcome, error) {
		res, err := a.Analyze(ctx, src)
		if err != nil {
			return jetstream.Outcome{}, err
		}
		sum := map[string]float64{"peak_hp": run.PeakHP, "peak_torque": run.PeakTorque}
		for _, cr := range res.Cylinders {
			var total float64
			var n int
			for i, cell := range cr.Cells {
				if cell.Confidence != ve.ConfidenceNone {
					total += (cr.Correction.Values[i] - 1) * 100
					n++
				}
			}
			name := strings.ToLower(ve.CylinderName(cr.Cylinder))
			sum[name+"_cells"] = float64(n)
			if n > 0 {
				sum[name+"_mean_correction_pct"] = total / float64(n)
			}
		}
		return jetstream.Outcome{Summary: sum}, nil
	})
}

// TestStubRunsThroughVEIntoSQLite is the whole Jetstream pipeline with real
// parts: the stub server's simulator-made runs -> HTTP client -> poller ->
// converter -> the default VE analyzer -> runs in a SQLite run store. The
// lean runs must come out wanting fuel and the rich ones wanting less; the
// run without a MAP column fails with a reason; nothing is processed twice.
func TestStubRunsThroughVEIntoSQLite(t *testing.T) {
	ctx := t.Context()
	srv, err := jetstreamtest.NewStub(ctx, jetstreamtest.Options{APIKey: testKey})
	require.NoError(t, err)
	defer srv.Close()
	rs, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "runs.db"), sqlstore.Options{})
	require.NoError(t, err)
	defer rs.Close()
	c, err := jetstream.NewHTTPClient(jetstream.HTTPOptions{BaseURL: srv.URL, APIKey: testKey})
	require.NoError(t, err)
	a, err := ve.New(ve.Options{})
	require.NoError(t, err)
	p, err := jetstream.NewPoller(c, runstorestate.New(rs, runstorestate.Options{}), veProcessor(a),
		jetstream.PollerOptions{Retry: jetstream.RetryPolicy{MaxAttempts: 1}})
	require.NoError(t, err)

	res, err := p.Poll(ctx)
	require.NoError(t, err)
	require.Len(t, res.New, 7)
	require.Len(t, res.Processed, 6)
	require.Equal(t, []string{"JS-GAMMA-404"}, res.Failed)

	again, err := p.Poll(ctx)
	require.NoError(t, err)
	require.Empty(t, again.New)
	require.Empty(t, again.Processed, "a second poll must not process anything again")

	page, err := rs.List(ctx, runstore.Filter{Sources: []runstore.RunSource{runstore.SourceJetstream}})
	require.NoError(t, err)
	require.Len(t, page.Runs, 7)
	for _, run := range page.Runs {
		if run.JetstreamID == "JS-GAMMA-404" {
			require.Equal(t, runstore.StatusFailed, run.Status)
			require.NotNil(t, run.Error)
			require.Contains(t, strings.ToLower(run.Error.Message), "map")
			continue
		}
		require.Equal(t, runstore.StatusCompleted, run.Status, run.JetstreamID)
		var out jetstream.Outcome
		require.NoError(t, json.Unmarshal(run.Results, &out), run.JetstreamID)
		front := out.Summary["front_mean_correction_pct"]
		require.Positive(t, out.Summary["front_cells"], run.JetstreamID)
		switch {
		case strings.HasPrefix(run.JetstreamID, "JS-ALPHA-"), strings.HasPrefix(run.JetstreamID, "JS-EPSILON-"):
			require.Greater(t, front, 1.0, "%s runs lean: it needs fuel", run.JetstreamID)
		case strings.HasPrefix(run.JetstreamID, "JS-DELTA-"), strings.HasPrefix(run.JetstreamID, "JS-ETA-"):
			require.Less(t, front, -1.0, "%s runs rich: it needs less fuel", run.JetstreamID)
		}
		require.NotNil(t, run.Stats.PeakHP, run.JetstreamID)
		require.Positive(t, *run.Stats.PeakHP, run.JetstreamID)
	}
}
