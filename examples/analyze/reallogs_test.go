package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/internal/shareddata"
	"github.com/dynoai/dynoai/ve"
)

// realLog is what examples/analyze must make of one of the real
// third-party logs in ../shared/testdata/reallogs (SOURCES.md describes
// each): corrections, or a refusal that names what is missing and what
// would help, and the channel report lines that show how it got there.
type realLog struct {
	file string
	// corrected: exit 0 with at least one cell corrected; otherwise the log
	// is refused with ve.ExitNoCorrections and the error holds refusal.
	corrected bool
	refusal   []string
	// report holds lines (or parts of lines) of the printed report: the
	// channel report, and for corrected logs the analysis.
	report []string
	// minLoadTop, when set, is the least top of the grid's load axis
	// (boost logs: the grid follows the data).
	minLoadTop float64
}

var realLogs = []realLog{
	{
		file: "winpep8__rob9206__DynoAI_3__PV_Logfile_5.csv_33.txt", corrected: true,
		report: []string{
			"channels (winpep8 format",
			`krpm [inferred: values 3.6..6.04 are thousands of rpm]`,
			`afr (all)        "(DWRT CPU) LC2 Volts Petrol AFR2"`, "one sensor for all cylinders: combined correction",
			`"(DWRT CPU) LC1 Volts Petrol AFR" (col 19), 7.38..7.39 AFR: dead`,
			`"(Harley - ECU Type 14 SW Level 141) WBO2 AFR Front" (col 68), constant 0 AFR: dead: reads 0 throughout: no sensor`,
			`°F [inferred: no unit stated;`,
			"combined: ",
		},
	},
	{
		// Five seconds of part throttle, overrun and a WOT burst: read,
		// but no cell holds steady long enough to be proven.
		file:    "winpep8__rob9206__DynoAI_3__6th_gear_load_then_wot_10.txt",
		refusal: []string{"no cell has the evidence for a correction"},
		report: []string{
			`afr (all)        "(DWRT CPU) LC2 Volts Petrol AFR2"`,
			`WBO2 AFR Rear" (col 69), constant 0 AFR: dead`,
			"rejected decel:",
			"no cell has the evidence for a correction.",
			"-min-samples",
		},
	},
	{
		file: "winpep8__rob9206__DynoAI_3__4thGear_baseline_pull12.txt",
		refusal: []string{
			"no live wideband", "LC2 Volts Petrol AFR2", "a probe in free air",
			"-map afr=COLUMN",
		},
		report: []string{
			`WBO2 AFR Front" (col 69), constant 5.1 AFR: dead`,
			"the dyno's rpm pickup lost the signal",
		},
	},
	{
		file: "winpep8__bgriggs__wrl-dyno-check__134power.csv",
		refusal: []string{
			"no AFR target", "-targets FILE", "-target-afr 13.2", "-target-default",
		},
		report: []string{
			`afr (front/1)    "(DWRT AFR) Air/Fuel Ratio 1"`,
			`"(DWRT AFR) Air/Fuel Ratio 2" (col 4), constant 0 AFR: dead: empty in every row`,
			`inHg [inferred: values near 24.45]`,
			`krpm [inferred`,
		},
	},
	{
		file:    "jetdrive-csv__rob9206__DynoAI_3__jetdrive_log_20251218_230024.csv",
		refusal: []string{"no live wideband", "-map afr=COLUMN"},
		report: []string{
			`"Desired Lambda" (col 3), AFR [inferred: values 14.29..14.36]`,
			`°F [inferred: no unit stated;`,
		},
	},
	{
		file: "msl__NickNothom__MX5_ECU__2016-08-03_22.54.04.msl", corrected: true,
		report: []string{
			"channels (msl format",
			`afr (all)        "AFR" (col 6), AFR [units row]`,
			`"TPS" (col 5), constant 0 %: dead: constant 0: no throttle signal`,
		},
	},
	{
		file: "msl__Wakamoly__Speeduino-Impreza-Project__2019-06-23_12.49.42.msl", corrected: true,
		report: []string{
			`map              "MAP" (col 4), kPa [units row], 22.0..176.0 kPa, ok`,
			"grid extended to the data",
		},
		minLoadTop: 170,
	},
	{
		file: "msl__ecmdroid__ecmdroid__BUE2D_log.msl",
		refusal: []string{
			"no live wideband", `"WB-AFR1": dead: reads -8 throughout: no sensor`,
			"-map afr_f=COLUMN -map afr_r=COLUMN per cylinder", "no AFR target",
		},
		report: []string{`"lambda1" (col 121), constant 0 lambda: dead`},
	},
	{
		file: "msl__srenner__SVO_II__2019-10-08_20.53.45.msl", corrected: true,
		report: []string{
			`afr_commanded (all) "AFRtrgt1"`,
			"rejected cold_engine:",
		},
	},
	{
		file: "tunerstudio-csv__TakumiPT__passat-b2-speeduino__2025-12-02_10.47.33.csv", corrected: true,
		report: []string{
			`ect              "CLT" (col 10), °C [inferred: no unit stated; iat 33.00..35.00, ect 93.00..107.0: ordinary in °C, unusual in °F]`,
			"note: time stamps shared",
		},
	},
	{
		file: "mlg__TakumiPT__passat-b2-speeduino__2025-12-02_10.47.33.mlg", corrected: true,
		report: []string{
			"channels (mlg format",
			`ect              "CLT" (col 10), °C [inferred`,
		},
	},
	{
		file: "mlg__Wakamoly__Speeduino-Impreza-Project__2024-07-17_20.10.20.mlg",
		refusal: []string{
			"no live wideband", `"AFR": dead: constant 19.70 AFR: pegged lean`,
		},
		report: []string{
			"channels (mlg format",
			"the log's TunerStudio project says FAHRENHEIT",
			`"AFR Target" (col 27), constant 19.7 AFR: dead`,
		},
	},
	{
		file:    "hptuners-csv__allantaylor8907__tuneassist__jr42.csv",
		refusal: []string{"no live wideband", "-map afr=COLUMN"},
		report: []string{
			"channels (hptuners format",
			`map              "Intake Manifold Absolute Pressure (SAE)" (col 19), psi [units row], 29.0..101.0 kPa`,
			`ect              "Engine Coolant Temp (SAE)" (col 35), °F [units row]`,
			`"Manifold Absolute Pressure Sensor" (col 20), 1.06..4.82 V: a raw sensor voltage`,
			`"Throttle Position (SAE)" (col 25), constant 0 %: dead`,
		},
	},
}

// Every real log gives corrections or a refusal that names what is
// missing and the flag that would help; the channel report says which
// columns were used, in what unit and why, and which were not.
func TestRealLogs(t *testing.T) {
	dir := shareddata.Dir(t, "reallogs")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	listed := map[string]bool{}
	for _, l := range realLogs {
		listed[l.file] = true
	}
	for _, e := range entries {
		if e.Name() != "SOURCES.md" {
			assert.True(t, listed[e.Name()], "%s has no expectation in realLogs", e.Name())
		}
	}
	for _, l := range realLogs {
		t.Run(l.file, func(t *testing.T) {
			c := defaults()
			c.out = t.TempDir()
			var stdout bytes.Buffer
			err := run(t.Context(), c, []string{filepath.Join(dir, l.file)}, &stdout, io.Discard)
			out := stdout.String()
			for _, want := range l.report {
				assert.Contains(t, out, want, "the report")
			}
			if !l.corrected {
				require.Error(t, err)
				assert.Equal(t, ve.ExitNoCorrections, exitCode(err, io.Discard), "%v", err)
				for _, want := range l.refusal {
					assert.Contains(t, err.Error(), want, "the refusal")
				}
				return
			}
			require.NoError(t, err, "report:\n%s", out)
			var doc struct {
				Corrected int               `json:"cells_corrected"`
				Load      []float64         `json:"map_kpa"`
				Channels  *json.RawMessage  `json:"channels"`
				Cylinders []json.RawMessage `json:"cylinders"`
			}
			b, err := os.ReadFile(filepath.Join(c.out, "result.json"))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &doc))
			assert.Positive(t, doc.Corrected, "cells corrected")
			assert.NotNil(t, doc.Channels, "result.json carries the channel report")
			assert.Len(t, doc.Cylinders, 1, "one wideband for the engine: one combined correction")
			if l.minLoadTop > 0 {
				assert.GreaterOrEqual(t, doc.Load[len(doc.Load)-1], l.minLoadTop, "the grid follows the boost")
			}
		})
	}
}
