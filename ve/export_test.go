package ve

import (
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// goldenResult analyzes a small deterministic log: a lean front, a rich
// rear, knock in one cell, a hot intake.
func goldenResult(t *testing.T) *Result {
	rng := rand.New(rand.NewPCG(3, 4))
	var samples []dyno.Sample
	for k := 0; k < 3000; k++ {
		rpm := 2000 + rng.Float64()*3000
		mp := 50 + rng.Float64()*45
		s := steady(time.Duration(k)*time.Second, rpm, mp, 13.2, 13.2*1.04, 13.2*(0.97+0.0002*(mp-50)))
		s.Power = s.Torque * rpm / 5252
		s.IAT = 40
		if rpm > 3800 && rpm < 4200 && mp > 75 && mp < 85 {
			s.Knock[0] = 2.0
			s.IAT = 52
		}
		samples = append(samples, s)
	}
	a, err := New(Options{Grid: dynoAI3Grid()})
	require.NoError(t, err)
	layout := twinLayout
	layout.Channels = layout.Channels.With(dyno.ChanPower).With(dyno.ChanKnock).With(dyno.ChanIAT)
	res, err := a.Analyze(t.Context(), dyno.NewSliceSource(layout, samples))
	require.NoError(t, err)
	return res
}

func TestExportGolden(t *testing.T) {
	res := goldenResult(t)
	dir := t.TempDir()
	names, err := res.WriteFiles(dir)
	require.NoError(t, err)
	require.Len(t, names, 2*8+3) // 8 per cylinder, the decision log, the report, result.json
	golden := filepath.Join("testdata", "golden")
	if *update {
		require.NoError(t, os.MkdirAll(golden, 0o755))
	}
	for _, name := range names {
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		path := filepath.Join(golden, name)
		if *update {
			require.NoError(t, os.WriteFile(path, got, 0o644))
			continue
		}
		want, err := os.ReadFile(path)
		require.NoError(t, err, "golden %s missing: run go test ./ve -run TestExportGolden -update", name)
		require.Equal(t, string(want), string(got), "%s differs from its golden file", name)
	}
}

func TestExportContent(t *testing.T) {
	res := goldenResult(t)
	var doc Document
	dir := t.TempDir()
	_, err := res.WriteFiles(dir)
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(dir, "result.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &doc))
	require.Equal(t, "dynoai.result@2", doc.Schema)
	require.Len(t, doc.Cylinders, 2)
	// The front ran 4 % lean everywhere: every evidenced cell wants +4 %.
	for i, row := range doc.Cylinders[0].Percent {
		for j, v := range row {
			if doc.Cylinders[0].Confidence[i][j] == "none" {
				require.Nil(t, v)
				continue
			}
			require.InDelta(t, 4.0, *v, 1e-3, "the fit's ridge may pull by a hundred-thousandth")
		}
	}
	kinds := map[string]bool{}
	for _, a := range doc.Anomalies {
		kinds[a.Kind] = true
	}
	require.True(t, kinds["knock"], "knock cell not reported: %+v", doc.Anomalies)
	require.True(t, kinds["cylinder_imbalance"], "front/rear disagreement not reported")

	report, err := os.ReadFile(filepath.Join(dir, "Diagnostics.txt"))
	require.NoError(t, err)
	require.Contains(t, string(report), "front: 3000 samples accepted")
	spark, err := os.ReadFile(filepath.Join(dir, "Spark_Adjust_Suggestion_Front.csv"))
	require.NoError(t, err)
	// Knock 2.0 pulls 1.33°, plus 0.5° because 52 °C is above 120 °F.
	require.True(t, strings.Contains(string(spark), "-1.83"), "spark grid: %s", spark)
}
