package ve

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/internal/shareddata"
)

// volatileReport matches the confidence scoring's own time, in the JSON
// report and in the text report.
var volatileReport = regexp.MustCompile(`("calculation_time_ms": )[-0-9.e+]+|(Calculation time: )[0-9.]+( ms)`)

func blankReport(s string) string { return volatileReport.ReplaceAllString(s, `$1$2-$3`) }

// TestDynoAI3ReportsReference compares ConfidenceReport.json and
// Diagnostics_Report.txt with the predecessor's for every reference case
// that has them, byte for byte once the calculation time is blanked.
// (Anomaly_Hypotheses.json has no volatile field: TestDynoAI3CompatReference
// compares it as it is.)
func TestDynoAI3ReportsReference(t *testing.T) {
	root := shareddata.Dir(t, "dynoai3")
	compared := 0
	for _, tc := range dynoai3Cases {
		refDir := filepath.Join(root, "reference", tc.name)
		if _, err := os.Stat(filepath.Join(refDir, "ConfidenceReport.json")); os.IsNotExist(err) {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			opts := DefaultDynoAI3Options()
			if tc.opts != nil {
				opts = tc.opts(t, root)
			}
			data, err := os.ReadFile(filepath.Join(root, "logs", tc.log))
			require.NoError(t, err)
			res, err := DynoAI3Compat(t.Context(), bytes.NewReader(data), tc.log, opts)
			require.NoError(t, err)
			out := t.TempDir()
			names, err := res.WriteFiles(out)
			require.NoError(t, err)
			for _, name := range []string{"ConfidenceReport.json", "Diagnostics_Report.txt", "Anomaly_Hypotheses.json"} {
				require.Contains(t, names, name)
				want, err := os.ReadFile(filepath.Join(refDir, name))
				require.NoError(t, err)
				got, err := os.ReadFile(filepath.Join(out, name))
				require.NoError(t, err)
				require.Equal(t, blankReport(string(want)), blankReport(string(got)), "%s differs from the predecessor's", name)
			}
		})
		compared++
	}
	require.Equal(t, 8, compared, "reference cases with a confidence report")
}

// TestDynoAI3AnomalyVectors runs the anomaly diagnostics on the synthetic
// grids of ve-afr spec §9.1 and expects its scores to the last digit.
func TestDynoAI3AnomalyVectors(t *testing.T) {
	g := dynoAI3Grid()
	nan := math.NaN()
	ve := MustTable(g.RPM, g.MAP, nan)
	for i := range 5 {
		for j := 1; j < 5; j++ {
			ve.Set(i, j, 0.5)
		}
	}
	ve.Set(2, 2, 6.0)
	front := MustTable(g.RPM, g.MAP, 0)
	rear := MustTable(g.RPM, g.MAP, nan)
	for i, rpm := range g.RPM {
		for j, kpa := range g.MAP {
			if rpm >= 2500 && rpm <= 3500 && kpa >= 65 {
				rear.Set(i, j, 3.5)
			}
		}
	}
	knock := MustTable(g.RPM, g.MAP, 0)
	iat := MustTable(g.RPM, g.MAP, nan)
	knock.Set(3, 3, 2.0) // 3000 rpm, 80 kPa
	iat.Set(3, 3, 125)
	hits := make([]int, 55)
	for i := range hits {
		hits[i] = 1
	}
	var pairs []float64
	for k := range 12 {
		pairs = append(pairs, 0.5*float64(k), 14.0-0.1*float64(k))
	}
	got := dynoai3Anomalies(dynoai3AnomalyIn{ve: ve, errF: front, errR: rear, knockF: knock, knockR: MustTable(g.RPM, g.MAP, 0),
		iatF: iat, iatR: iat, hits: hits, corr: corrOf(pairs)})
	type row struct {
		typ   string
		score string
		where string
	}
	var rows []row
	for _, a := range got {
		w := ""
		switch {
		case a.Cell != nil:
			w = pyStr(pyBin(a.Cell.RPM)) + "/" + pyStr(pyBin(a.Cell.KPA))
		case a.Cells != nil:
			w = pyStr(pyBin(a.Cells[0].RPM)) + "," + pyStr(pyBin(a.Cells[0].KPA))
			if a.Cells[0].Hot {
				w += " hot"
			}
		}
		rows = append(rows, row{a.Type, pyRepr(a.Score, false), w})
	}
	require.Equal(t, []row{
		{DynoAI3Spatial, "927437.5000000001", "2000/65"},
		{DynoAI3Spatial, "1236583.3333333335", "2500/50"},
		{DynoAI3Spatial, "3709750.0000000005", "2500/65"},
		{DynoAI3Spatial, "927437.5000000001", "2500/80"},
		{DynoAI3Spatial, "927437.5000000001", "3000/65"},
		{DynoAI3Imbalance, "3.5", ""},
		{DynoAI3KnockCluster, "1.0", "3000,80 hot"},
		{DynoAI3Electrical, "1.0000000000000002", ""},
	}, rows)
	require.Contains(t, got[7].Explanation, "(r=-1.00)")
	require.Contains(t, got[5].Explanation, "~ +3.5% in mid band")
}

// TestDynoAI3ReportsNeedCompat: the report methods on a result that
// DynoAI3Compat did not make return an error instead of panicking.
func TestDynoAI3ReportsNeedCompat(t *testing.T) {
	var r DynoAI3Result
	_, err := r.AnomalyJSON()
	require.ErrorIs(t, err, errNoDiagnostics)
	_, err = r.ConfidenceJSON()
	require.ErrorIs(t, err, errNoDiagnostics)
	_, err = r.DiagnosticsReport()
	require.ErrorIs(t, err, errNoDiagnostics)
	names, err := r.WriteFiles(t.TempDir())
	require.ErrorIs(t, err, errNoDiagnostics, "an empty result has no grids to write")
	require.Empty(t, names)
}
