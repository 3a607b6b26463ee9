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

// realLog is one of the third-party logs in testdata/reallogs, with values
// checked by hand (awk over the file) at one data row and what the channel
// report must say about it.
type realLog struct {
	file     string
	opts     dynolog.ReadOptions
	format   string
	cyls     int
	combined bool
	rows     int
	idx      int // the data row checked
	check    func(t *testing.T, s dyno.Sample)
	markers  int64
	backward int64
	// used maps a channel spec ("afr", "rpm", "afr_commanded") to a part of
	// the header of the column that must feed it.
	used map[string]string
	// units maps a channel spec to the unit the report must give it, and
	// unitWhy to a part of the reason.
	units   map[string]dyno.Unit
	unitWhy map[string]string
	// dead lists parts of headers the report must give as dead, with a
	// part of the reason.
	dead map[string]string
	// lacks lists channels the layout must not have.
	lacks []dyno.Channel
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

const harley = "(Harley - ECU Type 14 SW Level 141) "

var realLogs = []realLog{
	{
		file: "winpep8__rob9206__DynoAI_3__PV_Logfile_5.csv_33.txt", format: "winpep8", cyls: 2, combined: true, rows: 74,
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
			// The one live wideband, the LC-2 in the collector: slot 0.
			near(t, 12.738, s.AFR[0], "LC2 AFR")
			assert.False(t, dyno.Has(s.AFR[dyno.Rear]), "combined AFR fills slot 0 only")
			assert.False(t, dyno.Has(s.Lambda[dyno.Rear]), "AT lambda 2 is dead")
		},
		used:  map[string]string{"afr": "LC2 Volts Petrol AFR2", "rpm": harley + "Engine Speed", "afr_commanded": harley + "Desired Air/Fuel"},
		units: map[string]dyno.Unit{"rpm": dyno.UnitKRPM, "ect": dyno.UnitFahrenheit},
		dead: map[string]string{"WBO2 AFR Front": "reads 0 throughout", "(PV) AT Lambda 1": "no sensor",
			"LC1 Volts Petrol AFR": "constant 7.3", "(PV) Desired Lambda": "no AFR an ECU commands"},
	},
	{
		file: "winpep8__rob9206__DynoAI_3__6th_gear_load_then_wot_10.txt", format: "winpep8", cyls: 2, combined: true, rows: 105,
		idx: 55, // file line 57
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, 2750*time.Millisecond, s.Time)
			near(t, 2324, s.RPM, "RPM")
			near(t, 101.096, s.MAP, "MAP")
			near(t, 100, s.TPS, "TPS")
			near(t, 88.955, s.Torque, "torque")
			near(t, 38.968, s.Power, "power")
			near(t, 100.577, s.Baro, "baro")
			near(t, 13.195, s.AFR[0], "LC2")
		},
		used: map[string]string{"afr": "LC2 Volts Petrol AFR2"},
		dead: map[string]string{"WBO2 AFR Rear": "reads 0", "LC1 Volts Petrol AFR": "constant"},
	},
	{
		// The dead-sensor pull: WBO2 at 5.1, the LC-2 in free air.
		file: "winpep8__rob9206__DynoAI_3__4thGear_baseline_pull12.txt", format: "winpep8", cyls: 2, rows: 129,
		idx: 60, // file line 62, t = 3 s
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, 3*time.Second, s.Time)
			near(t, 3948, s.RPM, "ECU engine speed, not the dyno's failing pickup (2.737)")
			near(t, 12.5, s.AFRCommanded[0], "desired AFR")
			near(t, 78.016*5252/3948, s.Torque, "torque from power and the ECU's rpm")
		},
		used: map[string]string{"rpm": harley + "Engine Speed"},
		dead: map[string]string{"WBO2 AFR Front": "constant 5.1", "LC2 Volts Petrol AFR2": "free air",
			"LC1 Volts Petrol AFR": "constant 7.3", "(DWRT CPU) Torque": "lost the signal"},
		lacks: []dyno.Channel{dyno.ChanAFR, dyno.ChanLambda},
	},
	{
		file: "winpep8__bgriggs__wrl-dyno-check__134power.csv", format: "winpep8", cyls: 1, combined: true, rows: 275,
		idx: 149, // file line 151
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, 7450*time.Millisecond, s.Time)
			near(t, 5858, s.RPM, "RPM")
			near(t, 13.685, s.AFR[0], "AFR 1")
			near(t, 24.45*dyno.KPaPerInHg, s.Baro, "baro inHg")
			near(t, 236.228, s.Torque, "torque")
			near(t, 263.105, s.Power, "power")
			near(t, 850.252, s.DrumForce, "force")
			assert.False(t, dyno.Has(s.MAP))
		},
		used:  map[string]string{"afr": "Air/Fuel Ratio 1"},
		units: map[string]dyno.Unit{"baro": dyno.UnitInHg},
		dead:  map[string]string{"Air/Fuel Ratio 2": "empty in every row"},
		lacks: []dyno.Channel{dyno.ChanMAP, dyno.ChanTPS, dyno.ChanAFRCommanded},
	},
	{
		file: "jetdrive-csv__rob9206__DynoAI_3__jetdrive_log_20251218_230024.csv", format: "csv", cyls: 2, rows: 71,
		idx: 39, // file line 41
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, 10367*time.Millisecond, s.Time, "wall-clock time since the first row")
			near(t, 2712, s.RPM, "RPM")
			near(t, 12, s.TPS, "TPS")
			// "Desired Lambda" holds AFR: read as AFR.
			near(t, 14.361900329589844, s.AFRCommanded[dyno.Front], "desired lambda is AFR")
			near(t, 36, s.Spark[dyno.Front], "spark front")
			near(t, 36.5, s.Spark[dyno.Rear], "spark rear")
			near(t, f2c(63), s.IAT, "IAT °F: 63 is a cool night in °F, a hot intake in °C")
		},
		units:   map[string]dyno.Unit{"afr_commanded": dyno.UnitAFR, "iat": dyno.UnitFahrenheit, "ect": dyno.UnitFahrenheit},
		unitWhy: map[string]string{"afr_commanded": "values 14.", "iat": "ordinary in °F"},
		lacks:   []dyno.Channel{dyno.ChanMAP, dyno.ChanAFR},
	},
	{
		file: "msl__NickNothom__MX5_ECU__2016-08-03_22.54.04.msl", format: "msl", cyls: 1, combined: true, rows: 2439, markers: 1,
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
			assert.False(t, dyno.Has(s.TPS), "the TPS column is dead")
		},
		used:  map[string]string{"afr": "AFR", "afr_commanded": "AFR Target 1"},
		units: map[string]dyno.Unit{"ect": dyno.UnitFahrenheit},
		dead:  map[string]string{"TPS": "constant 0", "Torque": "not measured"},
	},
	{
		file: "msl__Wakamoly__Speeduino-Impreza-Project__2019-06-23_12.49.42.msl", format: "msl", cyls: 1, combined: true, rows: 3928,
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
		units:   map[string]dyno.Unit{"iat": dyno.UnitFahrenheit, "afr": dyno.UnitAFR},
		unitWhy: map[string]string{"iat": "too hot for °C"},
	},
	{
		file: "msl__ecmdroid__ecmdroid__BUE2D_log.msl", format: "msl", cyls: 2, rows: 176,
		idx: 164, // file line 167
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, 3995*time.Millisecond, s.Time)
			near(t, 2775, s.RPM, "RPM")
			near(t, f2c(67), s.ECT, "CLT_F")
			near(t, f2c(47), s.IAT, "MAT_F")
			near(t, 46.76, s.Spark[dyno.Front], "spark1")
			near(t, 49.06, s.Spark[dyno.Rear], "spark2")
		},
		dead:  map[string]string{"WB-AFR1": "reads -8 throughout", "lambda2": "reads 0"},
		lacks: []dyno.Channel{dyno.ChanAFR, dyno.ChanMAP},
	},
	{
		file: "msl__srenner__SVO_II__2019-10-08_20.53.45.msl", format: "msl", cyls: 1, combined: true, rows: 8639, markers: 1,
		idx: 6299, // file line 6304
		check: func(t *testing.T, s dyno.Sample) {
			near(t, 3121, s.RPM, "RPM")
			near(t, 152.5, s.MAP, "boost MAP")
			near(t, 152.8, s.Load, "Tbl Indx")
			near(t, 56, s.TPS, "TP")
			near(t, 12.5, s.AFR[0], "AFR")
			near(t, 11.7, s.AFRCommanded[0], "AFRtrgt1")
			near(t, 25, s.Spark[0], "SparkAdv")
		},
		used: map[string]string{"afr_commanded": "AFRtrgt1", "load": "Tbl Indx", "tps": "TP"},
	},
	{
		file: "tunerstudio-csv__TakumiPT__passat-b2-speeduino__2025-12-02_10.47.33.csv", format: "msl", cyls: 1, combined: true, rows: 2700,
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
			near(t, 101, s.ECT, "CLT °C")
		},
		units:   map[string]dyno.Unit{"ect": dyno.UnitCelsius, "iat": dyno.UnitCelsius},
		unitWhy: map[string]string{"ect": "ordinary in °C"},
	},
	{
		// The binary of the TunerStudio CSV above: the same samples.
		file: "mlg__TakumiPT__passat-b2-speeduino__2025-12-02_10.47.33.mlg", format: "mlg", cyls: 1, combined: true, rows: 2700,
		backward: 1,
		idx:      398, // record 398, CSV file line 401
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, 26468*time.Millisecond, s.Time.Round(time.Millisecond))
			near(t, 2586, s.RPM, "RPM")
			near(t, 20, s.MAP, "MAP")
			near(t, 12.9, s.AFR[0], "AFR")
			near(t, 38, s.Spark[0], "advance _current")
			near(t, 101, s.ECT, "CLT °C")
		},
		units: map[string]dyno.Unit{"ect": dyno.UnitCelsius},
	},
	{
		// Cranking and idle: the wideband pegged lean, the target 19.7
		// throughout; the project says °F.
		file: "mlg__Wakamoly__Speeduino-Impreza-Project__2024-07-17_20.10.20.mlg", format: "mlg", cyls: 1, rows: 453,
		idx: 200,
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, 13251*time.Millisecond, s.Time.Round(time.Millisecond))
			near(t, 484, s.RPM, "RPM")
			near(t, 78, s.MAP, "MAP")
			assert.InDelta(t, f2c(105.8), s.ECT, 1e-5, "CLT °F (a float32 field)")
		},
		units:   map[string]dyno.Unit{"ect": dyno.UnitFahrenheit, "iat": dyno.UnitFahrenheit},
		unitWhy: map[string]string{"ect": "TunerStudio project says FAHRENHEIT"},
		dead:    map[string]string{"AFR Target": "no AFR an ECU commands", "AFR": "pegged lean"},
		lacks:   []dyno.Channel{dyno.ChanAFR, dyno.ChanAFRCommanded},
	},
	{
		file: "hptuners-csv__allantaylor8907__tuneassist__jr42.csv", format: "hptuners", cyls: 1, rows: 749,
		markers: 1,   // the [Channel Data] line
		idx:     223, // file line 243, the peak rpm
		check: func(t *testing.T, s dyno.Sample) {
			assert.Equal(t, 28945*time.Millisecond, s.Time)
			near(t, 1442, s.RPM, "Engine RPM (SAE)")
			near(t, 5.8015097559*dyno.KPaPerPSI, s.MAP, "MAP psi")
			near(t, 14.271484375, s.AFRCommanded[0], "AFR commanded")
			near(t, f2c(102.2), s.ECT, "ECT °F")
			near(t, 17.5, s.Spark[0], "timing advance")
		},
		used:  map[string]string{"rpm": "Engine RPM (SAE)", "map": "Intake Manifold Absolute Pressure (SAE)"},
		units: map[string]dyno.Unit{"map": dyno.UnitPSI, "ect": dyno.UnitFahrenheit},
		dead:  map[string]string{"Throttle Position (SAE)": "constant 0"},
		lacks: []dyno.Channel{dyno.ChanAFR, dyno.ChanTPS},
	},
}

func TestRealLogs(t *testing.T) {
	dir := shareddata.Dir(t, "reallogs")
	seen := map[string]bool{}
	for _, tc := range realLogs {
		seen[tc.file] = true
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			r, err := dynolog.Open(path, tc.opts)
			require.NoError(t, err)
			defer r.Close()
			l := r.Layout()
			assert.Equal(t, tc.format, l.Format)
			assert.Equal(t, tc.cyls, l.Cylinders)
			assert.Equal(t, tc.combined, l.CombinedAFR, "combined AFR")
			assert.Equal(t, path, l.Name)
			for _, c := range tc.lacks {
				assert.False(t, l.Channels.Has(c), "the layout has no %v", c)
			}
			checkReport(t, r.ChannelReport(), tc)
			all := readAll(t, r)
			require.Len(t, all, tc.rows)
			tc.check(t, all[tc.idx])
			st := r.Stats()
			assert.Equal(t, int64(tc.rows), st.Rows)
			assert.Equal(t, tc.markers, st.Markers)
			assert.Equal(t, tc.backward, st.TimeBackwards)
			assert.Empty(t, st.Skipped)
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

// checkReport asserts what tc says the channel report holds.
func checkReport(t *testing.T, rep *dyno.ChannelReport, tc realLog) {
	t.Helper()
	require.NotNil(t, rep)
	assert.Equal(t, tc.format, rep.Format)
	find := func(spec string) *dyno.ChannelInfo {
		c, cyl, err := dynolog.ParseChannelSpec(spec)
		require.NoError(t, err)
		if cyl == dynolog.AllCylinders {
			cyl = 0
		}
		return rep.Find(c, cyl)
	}
	for spec, col := range tc.used {
		ci := find(spec)
		if assert.NotNil(t, ci, "%s is used\n%s", spec, rep) {
			assert.Contains(t, ci.Column, col, spec)
			assert.NotEqual(t, dyno.HealthDead, ci.Health, spec)
		}
	}
	for spec, u := range tc.units {
		if ci := find(spec); assert.NotNil(t, ci, "%s is used\n%s", spec, rep) {
			assert.Equal(t, u, ci.Unit, "%s: %s", spec, ci.UnitReason)
			if why, ok := tc.unitWhy[spec]; ok {
				assert.Contains(t, ci.UnitReason, why, spec)
			}
		}
	}
	for col, why := range tc.dead {
		found := false
		for _, u := range rep.Unused {
			if strings.Contains(u.Column, col) && u.Health == dyno.HealthDead {
				found = true
				assert.Contains(t, u.Reason, why, col)
				break
			}
		}
		assert.True(t, found, "%s is reported dead\n%s", col, rep)
	}
	if tc.combined {
		ci := rep.Find(dyno.ChanAFR, 0)
		if assert.NotNil(t, ci) {
			assert.True(t, ci.Combined, "the report flags the combined wideband")
		}
	}
}

// A TunerStudio binary log and TunerStudio's CSV export of it give the
// same samples, to the CSV's printed precision.
func TestReallogsMLGMatchesItsCSV(t *testing.T) {
	dir := shareddata.Dir(t, "reallogs")
	read := func(name string) ([]dyno.Sample, dyno.Layout) {
		r, err := dynolog.Open(filepath.Join(dir, name), dynolog.ReadOptions{})
		require.NoError(t, err)
		defer r.Close()
		return readAll(t, r), r.Layout()
	}
	bin, lb := read("mlg__TakumiPT__passat-b2-speeduino__2025-12-02_10.47.33.mlg")
	csv, lc := read("tunerstudio-csv__TakumiPT__passat-b2-speeduino__2025-12-02_10.47.33.csv")
	require.Equal(t, lc.Channels, lb.Channels)
	require.Equal(t, lc.CombinedAFR, lb.CombinedAFR)
	require.Len(t, bin, len(csv))
	for i := range csv {
		for _, c := range lc.Channels.List() {
			for cyl := 0; cyl < max(1, lc.Cylinders); cyl++ {
				a, b := csv[i].Value(c, cyl), bin[i].Value(c, cyl)
				if dyno.Has(a) != dyno.Has(b) {
					t.Fatalf("row %d %v: csv %v, mlg %v", i, c, a, b)
				}
				if dyno.Has(a) {
					// The CSV prints up to 3 decimals; float32 fields.
					require.InDelta(t, a, b, 0.051+1e-6*abs(a), "row %d %v", i, c)
				}
			}
		}
	}
}

func TestReallogsMapTheWideband(t *testing.T) {
	// A tuner who knows better names the wideband: -map afr="LC2 AFR2"
	// finds "(DWRT CPU) LC2 Volts Petrol AFR2" by its words.
	path := filepath.Join(shareddata.Dir(t, "reallogs"), "winpep8__rob9206__DynoAI_3__4thGear_baseline_pull12.txt")
	r, err := dynolog.Open(path, dynolog.ReadOptions{Map: []dynolog.ColumnMapping{
		{Channel: dyno.ChanAFR, Cyl: dynolog.AllCylinders, Column: "LC2 AFR2"},
	}})
	require.NoError(t, err)
	defer r.Close()
	assert.True(t, r.Layout().CombinedAFR)
	ci := r.ChannelReport().Find(dyno.ChanAFR, 0)
	require.NotNil(t, ci)
	assert.Equal(t, "(DWRT CPU) LC2 Volts Petrol AFR2", ci.Column)
	assert.Equal(t, dyno.HealthDead, ci.Health, "still reported as it is")
	assert.Contains(t, ci.HealthReason, "chosen by the user")
	all := readAll(t, r)
	near(t, 19.131, all[60].AFR[0], "LC2 AFR at t = 3 s")

	// An ambiguous name is refused with the candidates.
	_, err = dynolog.Open(path, dynolog.ReadOptions{Map: []dynolog.ColumnMapping{{Channel: dyno.ChanAFR, Cyl: dynolog.AllCylinders, Column: "AFR"}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "matches")
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
