package dynolog_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/internal/shareddata"
)

// readAll reads every sample of r.
func readAll(t *testing.T, r *dynolog.Reader) []dyno.Sample {
	t.Helper()
	var out []dyno.Sample
	for {
		s := dyno.NewSample()
		err := r.Next(context.Background(), &s)
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		out = append(out, s)
	}
}

// realLog is one of the third-party logs in testdata/reallogs with values
// checked by hand (awk over the file) at one data row.
type realLog struct {
	file     string
	opts     dynolog.ReadOptions
	refuse   []dyno.Channel // the missing channels when the default options refuse it
	format   string
	cyls     int
	rows     int
	idx      int // the data row checked
	check    func(t *testing.T, s dyno.Sample)
	markers  int64
	backward int64
	// afrBad is true per cylinder when every measured AFR is implausible
	// (no sensor fitted).
	afrBad [2]bool
}

func near(t *testing.T, want, got float64, what string) {
	t.Helper()
	assert.InDelta(t, want, got, 1e-9*max(1, abs(want)), what)
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

func f2c(f float64) float64 { return (f - 32) * 5 / 9 }

var realLogs = []realLog{
	{
		file: "winpep8__rob9206__DynoAI_3__PV_Logfile_5.csv_33.txt", format: "winpep8", cyls: 2, rows: 74, afrBad: [2]bool{true, true},
		idx: 20, // file line 22, t = 1 s
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, time.Second, s.Time)
			near(t, 4206, s.RPM, "RPM from kRPM")
			near(t, 100.121, s.MAP, "MAP")
			near(t, 89.182, s.TPS, "TPS")
			near(t, 100.385, s.Baro, "baro kPa")
			near(t, 104.493, s.Torque, "torque")
			near(t, 83.598, s.Power, "power")
			near(t, 82.052, s.DrumSpeed, "drum speed")
			near(t, 387.353, s.DrumForce, "drum force")
			near(t, 12.5, s.AFRCommanded[dyno.Front], "desired AFR front")
			near(t, 12.5, s.AFRCommanded[dyno.Rear], "desired AFR rear")
			near(t, 31.452, s.Spark[dyno.Front], "spark front")
			near(t, 30.452, s.Spark[dyno.Rear], "spark rear")
			near(t, 0, s.Knock[dyno.Rear], "knock rear")
			near(t, f2c(105.972), s.IAT, "IAT °F")
			near(t, f2c(151.406), s.ECT, "ECT °F")
			// No onboard wideband: WBO2 front/rear are 0, reported as read.
			near(t, 0, s.AFR[dyno.Front], "WBO2 front")
			near(t, 0, s.Lambda[dyno.Rear], "AT lambda 2")
		},
	},
	{
		file: "winpep8__rob9206__DynoAI_3__6th_gear_load_then_wot_10.txt", format: "winpep8", cyls: 2, rows: 105, afrBad: [2]bool{true, true},
		idx: 55, // file line 57
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, 2750*time.Millisecond, s.Time)
			near(t, 2324, s.RPM, "RPM")
			near(t, 101.096, s.MAP, "MAP")
			near(t, 100, s.TPS, "TPS")
			near(t, 88.955, s.Torque, "torque")
			near(t, 38.968, s.Power, "power")
			near(t, 100.577, s.Baro, "baro")
		},
	},
	{
		file: "winpep8__bgriggs__wrl-dyno-check__134power.csv", format: "winpep8", cyls: 2, rows: 275,
		refuse: []dyno.Channel{dyno.ChanMAP},
		opts:   dynolog.ReadOptions{Required: []dyno.Channel{dyno.ChanRPM, dyno.ChanTorque}},
		idx:    149, // file line 151
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, 7450*time.Millisecond, s.Time)
			near(t, 5858, s.RPM, "RPM")
			near(t, 13.685, s.AFR[dyno.Front], "AFR 1")
			assert.False(t, dyno.Has(s.AFR[dyno.Rear]), "AFR 2 is a blank cell")
			near(t, 24.45*dyno.KPaPerInHg, s.Baro, "baro inHg")
			near(t, 236.228, s.Torque, "torque")
			near(t, 263.105, s.Power, "power")
			near(t, 850.252, s.DrumForce, "force")
			assert.False(t, dyno.Has(s.MAP))
		},
	},
	{
		file: "jetdrive-csv__rob9206__DynoAI_3__jetdrive_log_20251218_230024.csv", format: "csv", cyls: 2, rows: 71,
		refuse: []dyno.Channel{dyno.ChanMAP},
		opts:   dynolog.ReadOptions{Required: []dyno.Channel{dyno.ChanRPM}},
		idx:    39, // file line 41
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, 10367*time.Millisecond, s.Time, "wall-clock time since the first row")
			near(t, 2712, s.RPM, "RPM")
			near(t, 12, s.TPS, "TPS")
			// "Desired Lambda" holds AFR: kept as AFR.
			near(t, 14.361900329589844, s.AFRCommanded[dyno.Front], "desired lambda is AFR")
			near(t, 36, s.Spark[dyno.Front], "spark front")
			near(t, 36.5, s.Spark[dyno.Rear], "spark rear")
		},
	},
	{
		file: "msl__NickNothom__MX5_ECU__2016-08-03_22.54.04.msl", format: "msl", cyls: 1, rows: 2439, markers: 1,
		idx: 995, // file line 1000
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, 66443*time.Millisecond, s.Time)
			near(t, 3063, s.RPM, "RPM")
			near(t, 61.7, s.MAP, "MAP")
			near(t, 13.6, s.AFR[0], "AFR")
			near(t, f2c(98.4), s.IAT, "MAT in °F per the cp1252 units row")
			near(t, f2c(195.7), s.ECT, "CLT °F")
			near(t, 31.3, s.Spark[0], "spark")
			near(t, 97.7, s.Baro, "baro")
			near(t, 13.5, s.AFRCommanded[0], "AFR target 1")
		},
	},
	{
		file: "msl__Wakamoly__Speeduino-Impreza-Project__2019-06-23_12.49.42.msl", format: "msl", cyls: 1, rows: 3928,
		idx: 1578, // file line 1583
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, 117931*time.Millisecond, s.Time)
			near(t, 4983, s.RPM, "RPM")
			near(t, 170, s.MAP, "boost MAP")
			near(t, 15.3, s.AFR[0], "AFR column wins over lambda")
			near(t, 1.041, s.Lambda[0], "lambda")
			near(t, 11.9, s.AFRCommanded[0], "AFR target")
			near(t, f2c(181), s.IAT, "IAT °F")
			near(t, 17, s.Spark[0], "advance")
		},
	},
	{
		file: "msl__ecmdroid__ecmdroid__BUE2D_log.msl", format: "msl", cyls: 2, rows: 176, afrBad: [2]bool{true, true},
		refuse: []dyno.Channel{dyno.ChanMAP},
		opts:   dynolog.ReadOptions{Required: []dyno.Channel{dyno.ChanRPM}},
		idx:    164, // file line 167
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, 3995*time.Millisecond, s.Time)
			near(t, 2775, s.RPM, "RPM")
			near(t, f2c(67), s.ECT, "CLT_F")
			near(t, f2c(47), s.IAT, "MAT_F")
			near(t, 46.76, s.Spark[dyno.Front], "spark1")
			near(t, 49.06, s.Spark[dyno.Rear], "spark2")
			near(t, -8, s.AFR[dyno.Front], "WB-AFR1 sentinel, as read")
		},
	},
	{
		file: "tunerstudio-csv__TakumiPT__passat-b2-speeduino__2025-12-02_10.47.33.csv", format: "msl", cyls: 1, rows: 2700,
		backward: 1,   // the stale first row
		idx:      398, // file line 401
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, 26468*time.Millisecond, s.Time)
			near(t, 2586, s.RPM, "RPM")
			near(t, 20, s.MAP, "MAP")
			near(t, 12.9, s.AFR[0], "AFR")
			near(t, 0.878, s.Lambda[0], "lambda")
			near(t, 38, s.Spark[0], "advance _current")
			near(t, 99, s.Baro, "baro")
		},
	},
}

func TestRealLogs(t *testing.T) {
	dir := shareddata.Dir(t, "reallogs")
	seen := map[string]bool{}
	for _, tc := range realLogs {
		seen[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if tc.refuse != nil {
				_, err := dynolog.Open(path, dynolog.ReadOptions{})
				require.ErrorIs(t, err, dynolog.ErrMissingColumns)
				var me *dynolog.MissingColumnsError
				require.ErrorAs(t, err, &me)
				assert.Equal(t, tc.refuse, me.Missing)
				assert.NotEmpty(t, me.Found)
				assert.Contains(t, err.Error(), "headers found")
			}
			r, err := dynolog.Open(path, tc.opts)
			require.NoError(t, err)
			defer r.Close()
			l := r.Layout()
			assert.Equal(t, tc.format, l.Format)
			assert.Equal(t, tc.cyls, l.Cylinders)
			assert.Equal(t, path, l.Name)
			all := readAll(t, r)
			require.Len(t, all, tc.rows)
			tc.check(t, all[tc.idx])
			st := r.Stats()
			assert.Equal(t, int64(tc.rows), st.Rows)
			assert.Equal(t, tc.markers, st.Markers)
			assert.Equal(t, tc.backward, st.TimeBackwards)
			assert.Empty(t, st.Skipped)
			for c := 0; c < min(2, tc.cyls); c++ {
				bad := st.AFRRows[c] > 0 && st.AFRImplausible[c] == st.AFRRows[c]
				assert.Equal(t, tc.afrBad[c], bad, "cylinder %d: %d of %d AFR values implausible", c, st.AFRImplausible[c], st.AFRRows[c])
			}
		})
	}
	// Every log in the folder is covered.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".md") {
			assert.True(t, seen[e.Name()], "no test for %s", e.Name())
		}
	}
}

func TestReallogsWinPEP8AddAlias(t *testing.T) {
	// The Harley bike's only real AFR is the collector LC-2 on the dyno's
	// analog input: a caller maps it with an extra alias.
	path := filepath.Join(shareddata.Dir(t, "reallogs"), "winpep8__rob9206__DynoAI_3__PV_Logfile_5.csv_33.txt")
	r, err := dynolog.Open(path, dynolog.ReadOptions{Aliases: []dynolog.Alias{
		{Name: "(DWRT CPU) LC2 Volts Petrol AFR2", Channel: dyno.ChanAFR, Cyl: dynolog.AllCylinders, Unit: dyno.UnitAFR},
	}})
	require.NoError(t, err)
	defer r.Close()
	all := readAll(t, r)
	near(t, 12.738, all[20].AFR[dyno.Front], "LC2 AFR front")
	near(t, 12.738, all[20].AFR[dyno.Rear], "LC2 AFR rear")
}

// The predecessor's sample logs (testdata/dynoai3/logs), checked by hand.
func TestDynoAI3Logs(t *testing.T) {
	dir := shareddata.Dir(t, "dynoai3", "logs")
	cases := []struct {
		file  string
		rows  int
		check func(t *testing.T, first dyno.Sample, l dyno.Layout)
	}{
		{"WinPEP_Log_Sample.csv", 16, func(t *testing.T, s dyno.Sample, l dyno.Layout) {
			near(t, 2500, s.RPM, "rpm")
			near(t, 45.2, s.MAP, "map")
			near(t, 65.3, s.Torque, "torque")
			near(t, 14.65, s.AFR[dyno.Front], "measured afr f")
			near(t, 14.68, s.AFR[dyno.Rear], "measured afr r")
			near(t, 14.7, s.AFRCommanded[dyno.Rear], "afr cmd r")
			near(t, 32.5, s.Spark[dyno.Front], "timing_f")
			near(t, f2c(85.4), s.IAT, "iat °F")
			near(t, 65.3*2500/5252.0, s.Power, "power derived from torque")
		}},
		{"WinPEP_Sample.csv", 5, func(t *testing.T, s dyno.Sample, l dyno.Layout) {
			near(t, 2000, s.RPM, "rpm")
			near(t, 60, s.MAP, "map_kpa")
			near(t, 13.1, s.AFR[dyno.Front], "afr_meas_f")
			near(t, 0, s.Knock[dyno.Rear], "global knock feeds both")
			assert.Equal(t, 2, l.Cylinders)
		}},
		{"dense_dyno_test.csv", 12000, func(t *testing.T, s dyno.Sample, l dyno.Layout) {
			near(t, 3510.39, s.RPM, "rpm")
			near(t, 12.81, s.AFR[dyno.Rear], "afr_meas_r")
		}},
		{"synthetic_dyno_data.csv", 4000, func(t *testing.T, s dyno.Sample, l dyno.Layout) {
			near(t, 2820.94, s.RPM, "rpm")
		}},
		{"test_realistic.csv", 3600, func(t *testing.T, s dyno.Sample, l dyno.Layout) {
			near(t, 2196.4, s.RPM, "rpm")
			near(t, 13.13, s.AFR[dyno.Rear], "afr_meas_r")
		}},
		{"sample_winpep_log.csv", 10, func(t *testing.T, s dyno.Sample, l dyno.Layout) {
			// No torque (the predecessor refused it); MAP ~29.5 is read as
			// written.
			near(t, 1500, s.RPM, "rpm")
			near(t, 29.5, s.MAP, "map")
			near(t, 14.1, s.AFR[dyno.Rear], "AFR Rear")
			assert.False(t, l.Channels.Has(dyno.ChanTorque))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			r, err := dynolog.Open(filepath.Join(dir, tc.file), dynolog.ReadOptions{})
			require.NoError(t, err)
			defer r.Close()
			assert.Equal(t, "csv", r.Layout().Format)
			all := readAll(t, r)
			require.Len(t, all, tc.rows)
			tc.check(t, all[0], r.Layout())
		})
	}
	// Requiring torque refuses the template without it, as the predecessor did.
	_, err := dynolog.Open(filepath.Join(dir, "sample_winpep_log.csv"),
		dynolog.ReadOptions{Required: []dyno.Channel{dyno.ChanRPM, dyno.ChanMAP, dyno.ChanTorque}})
	var me *dynolog.MissingColumnsError
	require.True(t, errors.As(err, &me), "%v", err)
	assert.Equal(t, []dyno.Channel{dyno.ChanTorque}, me.Missing)
}
