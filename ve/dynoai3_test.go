package ve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/internal/shareddata"
)

// dynoai3Cases mirrors ../shared/testdata/dynoai3/CASES.md.
var dynoai3Cases = []struct {
	name, log string
	opts      func(t *testing.T, root string) DynoAI3Options
	// crashed marks the cases where the predecessor exited 1; the reference
	// holds what it wrote before crashing, if anything.
	crashed bool
	wantErr string
}{
	{name: "WinPEP_Log_Sample", log: "WinPEP_Log_Sample.csv"},
	{name: "WinPEP_Sample", log: "WinPEP_Sample.csv"},
	{name: "sample_winpep_log", log: "sample_winpep_log.csv", wantErr: "Missing required columns in WinPEP CSV: Torque"},
	{name: "dense_dyno_test", log: "dense_dyno_test.csv"},
	{name: "synthetic_dyno_data", log: "synthetic_dyno_data.csv"},
	{name: "test_realistic", log: "test_realistic.csv"},
	{name: "synthetic_dyno_data__clamp15_rearbias2.5", log: "synthetic_dyno_data.csv", opts: func(*testing.T, string) DynoAI3Options {
		o := DefaultDynoAI3Options()
		o.SmoothPasses, o.Clamp, o.RearBias, o.RearRuleDeg, o.HotExtra = 2, 15, 2.5, 2.0, -1.0
		return o
	}},
	{name: "test_realistic__clamp15", log: "test_realistic.csv", opts: func(*testing.T, string) DynoAI3Options {
		o := DefaultDynoAI3Options()
		o.Clamp = 15
		return o
	}},
	// Decel management and cylinder balancing write their own files; the
	// grids and paste blocks they leave alone must still match.
	{name: "dense_dyno_test__decel_balance", log: "dense_dyno_test.csv"},
	{name: "dense_dyno_test__base_front", log: "dense_dyno_test.csv", crashed: true, opts: func(t *testing.T, root string) DynoAI3Options {
		f, err := os.Open(filepath.Join(root, "tables", "FXDLS_Wheelie_VE_Base_Front_fixed.csv"))
		require.NoError(t, err)
		defer f.Close()
		base, err := ReadTableCSV(f, "FXDLS_Wheelie_VE_Base_Front_fixed.csv")
		require.NoError(t, err)
		o := DefaultDynoAI3Options()
		o.BaseFront = base
		return o
	}},
	{name: "dense_dyno_test__weighting_hp", log: "dense_dyno_test.csv", crashed: true, opts: func(*testing.T, string) DynoAI3Options {
		o := DefaultDynoAI3Options()
		o.Weighting = WeightPower
		return o
	}},
}

// dynoai3Volatile are the files that hold times or a run id (CASES.md).
var dynoai3Volatile = map[string]bool{"session_replay.json": true, "ConfidenceReport.json": true, "Diagnostics_Report.txt": true}

// TestDynoAI3CompatReference runs every case of CASES.md and compares every
// grid CSV and paste-ready file the predecessor wrote, byte for byte.
func TestDynoAI3CompatReference(t *testing.T) {
	root := shareddata.Dir(t, "dynoai3")
	for _, tc := range dynoai3Cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := DefaultDynoAI3Options()
			if tc.opts != nil {
				opts = tc.opts(t, root)
			}
			data, err := os.ReadFile(filepath.Join(root, "logs", tc.log))
			require.NoError(t, err)
			res, err := DynoAI3Compat(t.Context(), bytes.NewReader(data), tc.log, opts)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			out := t.TempDir()
			names, err := res.WriteFiles(out)
			require.NoError(t, err)
			refDir := filepath.Join(root, "reference", tc.name)
			compared := 0
			for _, name := range names {
				if dynoai3Volatile[name] {
					continue // compared without their volatile fields by their own tests
				}
				want, err := os.ReadFile(filepath.Join(refDir, name))
				if os.IsNotExist(err) && tc.crashed {
					continue // the predecessor crashed before writing it
				}
				require.NoError(t, err, "reference file %s", name)
				got, err := os.ReadFile(filepath.Join(out, name))
				require.NoError(t, err)
				require.Equal(t, string(want), string(got), "%s differs from the predecessor's", name)
				compared++
			}
			if tc.name == "dense_dyno_test__weighting_hp" {
				require.True(t, res.DerivedPower, "power must be derived on a log without HP")
				require.Zero(t, compared, "the predecessor wrote nothing for this case")
				return
			}
			require.GreaterOrEqual(t, compared, 16, "too few files compared")
		})
	}
}

// FuzzDynoAI3Compat feeds arbitrary logs to the compatibility loader and
// pipeline: they must return an error or a result on the toolkit's grid,
// never panic, and writing the files must work.
func FuzzDynoAI3Compat(f *testing.F) {
	f.Add([]byte("rpm,map_kpa,torque,afr_cmd_f,afr_cmd_r,afr_meas_f,afr_meas_r,iat,knock,tps\n3000,80,90,13,13,13.5,12.5,100,0,50\n"))
	f.Add([]byte("timestamp,rpm,map,torque,afr cmd f,measured afr f,knock f\n0.0,2500,45.2,65.3,14.7,14.65,1.5\n"))
	f.Add([]byte("Time (s),(PV) Engine Speed,(PV) Manifold Absolute Pressure,(DWR CPU) Torque,(PV) WBO2 AFR Front,(PV) Desired Air/Fuel,(PV) Lambda Front\n0.0,3000,80,90,5.1,13.0,0.92\n"))
	f.Add([]byte("rpm;map;torque\n1_000;nan;1e3\n"))
	f.Add([]byte("\"rpm\",\"map\",\"torque\"\n\"3000\",\"80\",\"90\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := DynoAI3Compat(t.Context(), bytes.NewReader(data), "fuzz.csv", DefaultDynoAI3Options())
		if err != nil {
			return
		}
		if res.VEDelta.Rows() != 11 || res.VEDelta.Cols() != 5 {
			t.Fatalf("grid %dx%d", res.VEDelta.Rows(), res.VEDelta.Cols())
		}
		for _, v := range res.VEDelta.Values {
			if Has(v) && (v < -7 || v > 7) {
				t.Fatalf("VE delta %v escapes the 7 %% clamp", v)
			}
		}
		dir := t.TempDir()
		if _, err := res.WriteFiles(dir); err != nil {
			t.Fatal(err)
		}
		// The side files are JSON a strict parser reads: no NaN or
		// Infinity slips into them.
		for _, name := range []string{"session_replay.json", "Anomaly_Hypotheses.json", "ConfidenceReport.json"} {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(data) {
				t.Fatalf("%s is not valid JSON:\n%s", name, data)
			}
		}
	})
}

// compatLog writes a WinPEP-style log of n rows with the given intake
// temperature.
func compatLog(n int, iat float64) []byte {
	var b bytes.Buffer
	b.WriteString("rpm,map_kpa,torque,afr_cmd_f,afr_cmd_r,afr_meas_f,afr_meas_r,iat,knock,tps\n")
	for i := range n {
		rpm := 2000 + float64(i%40)*100
		kpa := 40 + float64(i%13)*5
		fmt.Fprintf(&b, "%.0f,%.0f,%.1f,13.0,13.0,%.2f,%.2f,%.1f,0,%.0f\n", rpm, kpa, 60+float64(i%7), 13.2+float64(i%5)*0.05, 12.9, iat, 20+float64(i%60))
	}
	return b.Bytes()
}

// TestDynoAI3CompatNothingPasses: a log of which no row passes the
// toolkit's windows is refused with the reason, matching ErrNoCorrections.
func TestDynoAI3CompatNothingPasses(t *testing.T) {
	_, err := DynoAI3Compat(t.Context(), bytes.NewReader(compatLog(50, 25)), "celsius.csv", DefaultDynoAI3Options())
	require.ErrorIs(t, err, ErrNoCorrections)
	var nd *CompatNoDataError
	require.ErrorAs(t, err, &nd)
	require.Equal(t, 50, nd.Rows)
	require.Equal(t, 50, nd.Diagnostics[0].TempOutOfRange)
	require.ErrorContains(t, err, "celsius.csv: none of its 50 rows")
}

// onlyReader hides every method but Read, as a pipe or a network body would.
type onlyReader struct{ r *bytes.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// TestDynoAI3CompatReaders: a seekable file is read in two passes without
// holding it; any other reader is read into memory first; both give the
// same result, and a log that is not valid UTF-8 anywhere (even after the
// header) decodes its header as Latin-1 either way, as the toolkit does.
func TestDynoAI3CompatReaders(t *testing.T) {
	data := compatLog(500, 100)
	res1, err := DynoAI3Compat(t.Context(), bytes.NewReader(data), "a.csv", DefaultDynoAI3Options())
	require.NoError(t, err)
	res2, err := DynoAI3Compat(t.Context(), onlyReader{bytes.NewReader(data)}, "a.csv", DefaultDynoAI3Options())
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint(res1.VEDelta.Values), fmt.Sprint(res2.VEDelta.Values)) // NaN-aware
	require.Equal(t, res1.Diagnostics, res2.Diagnostics)
	require.Equal(t, 500, res1.Rows)

}

// TestDynoAI3Decoding: the whole file decides between UTF-8 and Latin-1,
// even when the only invalid byte is in its last row, and a rune cut by a
// read's end is still valid UTF-8.
func TestDynoAI3Decoding(t *testing.T) {
	header := "rpm,map_kpa,torque,IAT (°F)\n"
	for _, tc := range []struct {
		name, tail string
		want       string
	}{
		{"utf-8", "3000,80,90,100 °\n", "rpm,map_kpa,torque,IAT (°F)"},
		{"latin-1", "3000,80,90,100\x96\n", "rpm,map_kpa,torque,IAT (\u00c2\u00b0F)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte("\xef\xbb\xbf" + header + tc.tail)
			for _, r := range []io.Reader{bytes.NewReader(data), onlyReader{bytes.NewReader(data)}} {
				lines, err := openDynoAI3Lines(r, "d.csv")
				require.NoError(t, err)
				first, ok := lines.next()
				require.True(t, ok)
				require.Equal(t, tc.want, first)
			}
			valid, err := validUTF8(iotest.OneByteReader(bytes.NewReader(data)))
			require.NoError(t, err)
			require.Equal(t, tc.name == "utf-8", valid, "one byte at a time")
		})
	}
}

// BenchmarkDynoAI3Compat measures the compatibility run on logs of two
// lengths. B/op grows with the log: it counts each row's transient strings
// (garbage the collector takes back at once); what the run holds is the
// grid's accumulators and each cell's distinct AFR errors (for its MAD), so
// its peak memory grows only with those (a 1M-row log of two-decimal
// readings peaks at about 16 MiB of RSS in examples/analyze; one whose every
// value is distinct, about 65 MiB).
func BenchmarkDynoAI3Compat(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		data := compatLog(n, 100)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DynoAI3Compat(b.Context(), bytes.NewReader(data), "bench.csv", DefaultDynoAI3Options()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
