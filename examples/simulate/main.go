// Command simulate runs the virtual dyno (an M8-114 whose ECU VE tables are
// off) and writes its log as a canonical CSV, the format examples/analyze
// and every reader of the library take. The project's sample log is made
// with it, and so are the VE tables its ECU ran (the base tables to apply
// a correction to):
//
//	go run ./examples/simulate -out testdata/sample_pulls.csv -ecu-ve testdata/ve_base
//	go run ./examples/simulate -repeat 60 -out /tmp/big.csv   # about a million rows
//
// A test checks that the shipped files are what this command writes.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/tune"
	"github.com/dynoai/dynoai/ve"
)

// defaultScenario is what the command simulates without flags: the demo
// scenario, one run of the plan, no wideband delay, 50 samples a second.
func defaultScenario() (tune.Scenario, error) {
	sc, err := tune.ScenarioByName("demo", 1)
	if err != nil {
		return tune.Scenario{}, err
	}
	sc.Repeat, sc.Delay, sc.DT = 1, 0, 20*time.Millisecond
	return sc, nil
}

func main() {
	sc, err := defaultScenario()
	if err != nil {
		fmt.Fprintln(os.Stderr, "simulate:", err)
		os.Exit(1)
	}
	out := flag.String("out", "", "output file (default: standard output)")
	flag.Uint64Var(&sc.Seed, "seed", sc.Seed, "noise and ECU-error seed")
	flag.Float64Var(&sc.FrontPct, "front", sc.FrontPct, "mean ECU VE error of the front cylinder, percent")
	flag.Float64Var(&sc.RearPct, "rear", sc.RearPct, "mean ECU VE error of the rear cylinder, percent")
	flag.Float64Var(&sc.SpreadPct, "spread", sc.SpreadPct, "cell-to-cell spread of the ECU VE error, percent")
	flag.IntVar(&sc.Repeat, "repeat", sc.Repeat, "run the test plan this many times")
	flag.DurationVar(&sc.Delay, "delay", sc.Delay, "wideband transport delay")
	flag.DurationVar(&sc.DT, "dt", sc.DT, "sample interval")
	ecuVE := flag.String("ecu-ve", "", "also write the ECU's VE tables (on the analyzer's default grid) to `PREFIX`_Front.csv and PREFIX_Rear.csv")
	flag.Parse()
	if flag.NArg() > 0 {
		// flag stops at the first argument that is not a flag: whatever
		// follows it would be silently ignored.
		fmt.Fprintf(os.Stderr, "simulate: unexpected argument %q: this command takes flags only (-h lists them)\n", flag.Arg(0))
		os.Exit(2)
	}
	if err := run(sc, *out); err != nil {
		fmt.Fprintln(os.Stderr, "simulate:", err)
		os.Exit(1)
	}
	if *ecuVE != "" {
		if err := writeECUVE(sc, *ecuVE); err != nil {
			fmt.Fprintln(os.Stderr, "simulate:", err)
			os.Exit(1)
		}
	}
}

// writeECUVE writes the VE tables the simulated ECU runs, front and rear,
// on ve.DefaultGrid (the grid of an analysis of the log), so a correction
// from examples/analyze applies to them as it is.
func writeECUVE(sc tune.Scenario, prefix string) error {
	cfg, err := sc.Config()
	if err != nil {
		return err
	}
	g := ve.DefaultGrid()
	for c, name := range []string{"Front", "Rear"} {
		t, err := ve.NewTable(g.RPM, g.MAP, 0)
		if err != nil {
			return err
		}
		t.Precision = cfg.Initial[c].Precision
		for i, rpm := range g.RPM {
			for j, mp := range g.MAP {
				t.Set(i, j, t.Round(cfg.Initial[c].At(rpm, mp)))
			}
		}
		var b strings.Builder
		if err := t.WriteCSV(&b, ve.CSVFormat{Cell: ve.CellFormat{Decimals: t.Precision}}); err != nil {
			return err
		}
		path := prefix + "_" + name + ".csv"
		if err := os.WriteFile(path, []byte(b.String()), 0o666); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote the ECU's %s VE table to %s\n", strings.ToLower(name), path)
	}
	return nil
}

func run(sc tune.Scenario, out string) (err error) {
	sim, err := sc.Simulator()
	if err != nil {
		return err
	}
	var w io.Writer = os.Stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	n, err := dynolog.CopyCSV(context.Background(), bw, loggerResolution{sim})
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if out != "" {
		fmt.Fprintf(os.Stderr, "wrote %d samples to %s\n", n, out)
	}
	return nil
}

// loggerResolution rounds each channel to what a dyno data logger records
// (whole rpm, 0.1 kPa, 0.01 AFR ...), so the log looks like a real one and
// stays small.
type loggerResolution struct{ dyno.Source }

func (l loggerResolution) Next(ctx context.Context, s *dyno.Sample) error {
	if err := l.Source.Next(ctx, s); err != nil {
		return err
	}
	r := func(v *float64, decimals int) {
		if dyno.Has(*v) {
			p := math.Pow10(decimals)
			*v = math.Round(*v*p) / p
		}
	}
	r(&s.RPM, 0)
	r(&s.MAP, 1)
	r(&s.TPS, 1)
	r(&s.Torque, 1)
	r(&s.Power, 1)
	r(&s.IAT, 1)
	r(&s.ECT, 1)
	r(&s.Baro, 2)
	r(&s.DrumSpeed, 2)
	r(&s.DrumForce, 1)
	for c := range s.AFR {
		r(&s.AFR[c], 2)
		r(&s.AFRCommanded[c], 2)
		r(&s.Lambda[c], 3)
		r(&s.Spark[c], 1)
		r(&s.Knock[c], 1)
	}
	return nil
}
