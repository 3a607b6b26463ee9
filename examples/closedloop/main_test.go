package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    options
		want []string
	}{
		{"lean learned", options{scenario: "lean", seed: 1, learn: true, delay: 400 * time.Millisecond, iterations: 6, plan: true},
			[]string{"converged after 4 iterations", "on kept cells", "next tests", "hold"}},
		{"delay left in", options{scenario: "rich", seed: 2, delay: 400 * time.Millisecond, iterations: 6},
			[]string{"oscillating"}},
		{"coarse grid", options{scenario: "random", seed: 3, learn: true, delay: 400 * time.Millisecond, rpmStep: 500, iterations: 6},
			[]string{"converged after", "VE error RMS"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, run(t.Context(), &out, tt.o))
			for _, w := range tt.want {
				assert.Contains(t, out.String(), w)
			}
			assert.Equal(t, len(strings.Split(out.String(), "\n")) > 5, true)
		})
	}
}

func TestRunJSON(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), &out, options{scenario: "perfect", seed: 1, learn: true, delay: 100 * time.Millisecond, iterations: 2, json: true}))
	var doc struct {
		Report struct {
			Status     string `json:"status"`
			Iterations []struct {
				MaxAFRError float64 `json:"max_afr_error"`
			} `json:"iterations"`
		} `json:"report"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &doc))
	assert.Equal(t, "converged", doc.Report.Status)
	assert.NotEmpty(t, doc.Report.Iterations)
}

func TestRunErrors(t *testing.T) {
	var out bytes.Buffer
	require.ErrorContains(t, run(t.Context(), &out, options{scenario: "nope", iterations: 1}), `unknown scenario "nope"`)
	require.ErrorContains(t, run(t.Context(), &out, options{scenario: "lean", iterations: 1, rpmStep: 7}), "RPMStep 7")
}

// TestMetricsFile: a session run with -metrics-file records its outcome,
// its iterations and its analyses in the file, in the Prometheus text
// format; a session that does not converge counts as failed; a cancelled
// one as stopped.
func TestMetricsFile(t *testing.T) {
	dir := t.TempDir()
	read := func(name string) map[string]float64 {
		f, err := os.Open(filepath.Join(dir, name))
		require.NoError(t, err)
		defer f.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		mf, err := p.TextToMetricFamilies(f)
		require.NoError(t, err)
		out := map[string]float64{}
		for name, fam := range mf {
			for _, m := range fam.GetMetric() {
				key := name
				for _, l := range m.GetLabel() {
					key += "," + l.GetName() + "=" + l.GetValue()
				}
				switch {
				case m.GetCounter() != nil:
					out[key] = m.GetCounter().GetValue()
				case m.GetHistogram() != nil:
					out[key+",count"] = float64(m.GetHistogram().GetSampleCount())
					out[key+",sum"] = m.GetHistogram().GetSampleSum()
				}
			}
		}
		return out
	}
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), &out, options{scenario: "lean", seed: 1, learn: true, delay: 400 * time.Millisecond,
		iterations: 6, metricsFile: filepath.Join(dir, "converged.prom")}))
	require.Contains(t, out.String(), "converged after 4 iterations")
	got := read("converged.prom")
	assert.Equal(t, 1.0, got["dynoai_virtual_tuning_sessions_total,status=running"])
	assert.Equal(t, 1.0, got["dynoai_virtual_tuning_sessions_total,status=converged"])
	assert.Equal(t, 0.0, got["dynoai_virtual_tuning_sessions_total,status=failed"])
	assert.Equal(t, 1.0, got["dynoai_virtual_tuning_iterations,count"])
	assert.Equal(t, 4.0, got["dynoai_virtual_tuning_iterations,sum"])
	assert.Equal(t, 4.0, got["dynoai_analysis_total,source=simulator,status=success"])
	assert.Equal(t, 4.0, got["dynoai_analysis_duration_seconds,source=simulator,count"])
	assert.Positive(t, got["dynoai_analysis_duration_seconds,source=simulator,sum"])

	require.NoError(t, run(t.Context(), &out, options{scenario: "rich", seed: 2, delay: 400 * time.Millisecond,
		iterations: 6, metricsFile: filepath.Join(dir, "oscillating.prom")}))
	got = read("oscillating.prom")
	assert.Equal(t, 1.0, got["dynoai_virtual_tuning_sessions_total,status=failed"])
	assert.Equal(t, 0.0, got["dynoai_virtual_tuning_sessions_total,status=converged"])
	assert.Equal(t, 0.0, got["dynoai_virtual_tuning_iterations,count"], "only converged sessions count iterations")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.Error(t, run(ctx, &out, options{scenario: "lean", seed: 1, iterations: 6, metricsFile: filepath.Join(dir, "stopped.prom")}))
	got = read("stopped.prom")
	assert.Equal(t, 1.0, got["dynoai_virtual_tuning_sessions_total,status=stopped"])
	assert.Equal(t, 0.0, got["dynoai_analysis_total,source=simulator,status=success"])

	err := run(t.Context(), &out, options{scenario: "perfect", seed: 1, iterations: 1, metricsFile: filepath.Join(dir, "missing", "x.prom")})
	require.ErrorContains(t, err, "writing the metrics")
}
