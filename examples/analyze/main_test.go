package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/internal/shareddata"
	"github.com/dynoai/dynoai/ve"
)

// defaults returns the command's flag defaults.
func defaults() config {
	var c config
	if err := newFlags(&c).Parse(nil); err != nil {
		panic(err)
	}
	return c
}

// The README's main command: the shipped sample log in, corrections out.
func TestAnalyzeShippedSample(t *testing.T) {
	c := defaults()
	c.out = t.TempDir()
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(t.Context(), c, []string{"../../testdata/sample_pulls.csv"}, &stdout, &stderr))
	out := stdout.String()
	require.Contains(t, out, "channels (csv format")
	require.Contains(t, out, "front: ")
	require.Contains(t, out, "read 6305 rows")
	require.Contains(t, out, "next: apply a correction", "the output points to the next step")
	require.Contains(t, out, "-base ../../testdata/ve_base_Front.csv -correction "+c.out+"/VE_Multiplier_Front.csv",
		"with the ECU table shipped beside the sample")
	// The sample's ECU has the front VE 6 % low (lean) and the rear 4 % high
	// (rich): corrections must add fuel in front and take it out at the rear.
	res := loadMultipliers(t, filepath.Join(c.out, "VE_Multiplier_Front.csv"))
	rear := loadMultipliers(t, filepath.Join(c.out, "VE_Multiplier_Rear.csv"))
	i, j := ve.Nearest(res.RPM, 3500), ve.Nearest(res.MAP, 60)
	require.Greater(t, res.Get(i, j), 1.03)
	require.Less(t, rear.Get(i, j), 0.99)
}

// Flags after the log file work as well as before it (a tuner types
// "analyze LOG -out DIR").
func TestAnalyzeFlagsAfterLog(t *testing.T) {
	for _, args := range [][]string{
		{"-out", "DIR", "-q", "LOG"},
		{"LOG", "-out", "DIR", "-q"},
		{"-q", "LOG", "-out", "DIR"},
	} {
		var c config
		fs := newFlags(&c)
		fs.SetOutput(io.Discard)
		pos, err := parseArgs(fs, args)
		require.NoError(t, err, "%q", args)
		require.Equal(t, []string{"LOG"}, pos, "%q", args)
		require.Equal(t, "DIR", c.out, "%q", args)
		require.True(t, c.quiet, "%q", args)
	}
	var c config
	fs := newFlags(&c)
	fs.SetOutput(io.Discard)
	_, err := parseArgs(fs, []string{"LOG", "-nope"})
	require.Error(t, err)
}

// The exit status: 0 corrections, 3 refused or nothing proven, 2 usage,
// 1 anything else.
func TestExitCode(t *testing.T) {
	require.Equal(t, 0, exitCode(nil, io.Discard))
	require.Equal(t, 2, exitCode(fmt.Errorf("%w: bad flag", errUsage), io.Discard))
	require.Equal(t, ve.ExitNoCorrections, exitCode(fmt.Errorf("x: %w", ve.ErrNoCorrections), io.Discard))
	require.Equal(t, ve.ExitNoCorrections, exitCode(&ve.RefusalError{What: ve.ErrNoWideband}, io.Discard))
	require.Equal(t, 1, exitCode(os.ErrNotExist, io.Discard))
}

func loadMultipliers(t *testing.T, path string) *ve.Table {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	tb, err := ve.ReadTableCSV(f, path)
	require.NoError(t, err)
	return tb
}

func TestAnalyzeSimulate(t *testing.T) {
	c := defaults()
	c.out, c.simulate, c.quiet = t.TempDir(), true, true
	require.NoError(t, run(t.Context(), c, nil, &bytes.Buffer{}, &bytes.Buffer{}))
	_, err := os.Stat(filepath.Join(c.out, "result.json"))
	require.NoError(t, err)
}

func TestAnalyzeCompat(t *testing.T) {
	root := shareddata.Dir(t, "dynoai3")
	c := defaults()
	c.out, c.compat = t.TempDir(), true
	var stdout bytes.Buffer
	require.NoError(t, run(t.Context(), c, []string{filepath.Join(root, "logs", "test_realistic.csv")}, &stdout, &bytes.Buffer{}))
	got, err := os.ReadFile(filepath.Join(c.out, "VE_Correction_Delta_DYNO.csv"))
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join(root, "reference", "test_realistic", "VE_Correction_Delta_DYNO.csv"))
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
	for _, name := range []string{"Diagnostics_Report.txt", "Anomaly_Hypotheses.json", "ConfidenceReport.json", "session_replay.json"} {
		_, err := os.Stat(filepath.Join(c.out, name))
		require.NoError(t, err, "-compat writes %s", name)
	}
	require.Contains(t, stdout.String(), "its confidence score 43.1% (grade D), 0 anomalies, 121 decisions in session_replay.json")
}

func TestAnalyzeErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("time,rpm,map,afr,afr_cmd\n0,1000,50,13,13\n0.02,1x00,50,13,13\n"), 0o644))
	cases := []struct {
		name string
		mut  func(*config)
		args []string
		want string
	}{
		{"no args", func(*config) {}, nil, "exactly one log file"},
		{"both", func(c *config) { c.simulate = true }, []string{"x.csv"}, "exactly one log file"},
		{"missing file", func(*config) {}, []string{filepath.Join(dir, "nope.csv")}, "no such file"},
		{"bad cell", func(*config) {}, []string{bad}, "bad.csv:3"},
		{"weighting", func(c *config) { c.weighting = "mass" }, []string{bad}, "-weighting"},
		{"attribution", func(c *config) { c.attribution = "magic" }, []string{bad}, "-attribution"},
		{"clamp", func(c *config) { c.clamp = 0 }, []string{bad}, "-clamp"},
		{"two targets", func(c *config) { c.targetAFR, c.targetDefault = 13.2, true }, []string{bad}, "one of -targets"},
		{"unit", func(c *config) { c.units = listFlag{"ect=furlong"} }, []string{bad}, "unknown unit"},
		{"map", func(c *config) { c.maps = listFlag{"afr"} }, []string{bad}, "CHANNEL=COLUMN"},
		{"no such column", func(c *config) { c.maps = listFlag{"afr=nope"} }, []string{bad}, "nope"},
		{"fuel", func(c *config) { c.fuel = "diesel" }, []string{bad}, "diesel"},
		{"power without hp", func(c *config) { c.weighting = "power" }, []string{"../../testdata/sample_pulls.csv"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := defaults()
			c.out, c.quiet = t.TempDir(), true
			tc.mut(&c)
			err := run(t.Context(), c, tc.args, &bytes.Buffer{}, &bytes.Buffer{})
			if tc.want == "" {
				require.NoError(t, err) // the sample has HP: power weighting works
				return
			}
			require.Error(t, err)
			require.True(t, strings.Contains(err.Error(), tc.want), "error %q lacks %q", err, tc.want)
		})
	}
}

// TestAnalyzeCompatRefusesOutOfWindowLog: the shipped sample's intake
// temperature is in °C, which the predecessor's toolkit reads against a
// 30-300 °F window, so no row passes: -compat says so and exits 3
// instead of writing empty grids with exit 0.
func TestAnalyzeCompatRefusesOutOfWindowLog(t *testing.T) {
	c := defaults()
	c.out, c.compat = t.TempDir(), true
	err := run(t.Context(), c, []string{filepath.Join("..", "..", "testdata", "sample_pulls.csv")}, &bytes.Buffer{}, &bytes.Buffer{})
	require.ErrorIs(t, err, ve.ErrNoCorrections)
	require.ErrorContains(t, err, "intake temperature outside 30-300")
	require.Equal(t, ve.ExitNoCorrections, exitCode(err, io.Discard))
	entries, rerr := os.ReadDir(c.out)
	require.NoError(t, rerr)
	require.Empty(t, entries, "no empty grids are written")
}

// TestAnalyzeBalance: with a wideband per cylinder, analyze compares them
// and writes the balance trims and report; -balance none writes neither.
func TestAnalyzeBalance(t *testing.T) {
	sample := filepath.Join("..", "..", "testdata", "sample_pulls.csv")
	for _, mode := range []string{"to_target", "none"} {
		c := defaults()
		c.out, c.balance = t.TempDir(), mode
		var stdout bytes.Buffer
		require.NoError(t, run(t.Context(), c, []string{sample}, &stdout, &bytes.Buffer{}))
		_, err := os.Stat(filepath.Join(c.out, "Cylinder_Balance_Report.json"))
		if mode == "none" {
			require.ErrorIs(t, err, os.ErrNotExist)
			require.NotContains(t, stdout.String(), "balance (")
			continue
		}
		require.NoError(t, err)
		require.FileExists(t, filepath.Join(c.out, "Balance_Trim_Rear.csv"))
		// The sample's ECU is 6 % lean on the front and 4 % rich on the rear.
		require.Contains(t, stdout.String(), "Front runs leaner than Rear")
	}
	c := defaults()
	c.out, c.balance = t.TempDir(), "sideways"
	err := run(t.Context(), c, []string{sample}, &bytes.Buffer{}, &bytes.Buffer{})
	require.ErrorIs(t, err, errUsage)
}
