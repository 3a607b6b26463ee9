// Command closedloop runs a virtual tuning session: the simulated M8-114
// starts with wrong ECU VE tables, and the loop pulls, analyzes and
// corrects until the AFR error is gone. It prints the iteration table and
// the final error of the tables against the engine's true VE, in about a
// second:
//
//	go run ./examples/closedloop                      # lean start, delay learned
//	go run ./examples/closedloop -scenario random -seed 7
//	go run ./examples/closedloop -learn=false         # the 400 ms delay left in: no convergence
//	go run ./examples/closedloop -rpm-step 500        # the predecessor's coarser ECU grid
//	go run ./examples/closedloop -plan                # and the next tests for what stayed weak
//	go run ./examples/closedloop -json                # the report as JSON
//	go run ./examples/closedloop -metrics-file /var/lib/node_exporter/textfile/closedloop.prom
//
// With -metrics-file the session is also recorded in DynoAI's metrics
// (dynoai_virtual_tuning_sessions_total, dynoai_virtual_tuning_iterations,
// and each iteration's analysis in dynoai_analysis_total and
// dynoai_analysis_duration_seconds with source="simulator"), written in
// the Prometheus text format when the session ends: a session is a batch
// job of a second or so, too short to be scraped, so the file is for the
// node exporter's textfile collector (or a look with cat).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dynoai/dynoai/metrics"
	"github.com/dynoai/dynoai/tune"
	"github.com/prometheus/client_golang/prometheus"
)

type options struct {
	scenario   string
	seed       uint64
	learn      bool
	delay      time.Duration
	rpmStep    float64
	iterations int
	plan       bool
	json       bool
	// metricsFile, when set, receives the session's metrics.
	metricsFile string
}

func main() {
	var o options
	var names []string
	for _, sc := range tune.Scenarios() {
		names = append(names, sc.Name)
	}
	flag.StringVar(&o.scenario, "scenario", "lean", "start: "+strings.Join(names, ", "))
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the ECU error and the noise")
	flag.BoolVar(&o.learn, "learn", true, "learn the wideband delay from the logs")
	flag.DurationVar(&o.delay, "delay", 400*time.Millisecond, "the simulated wideband transport delay")
	flag.Float64Var(&o.rpmStep, "rpm-step", 0, "RPM spacing of the ECU grid (0: 250)")
	flag.IntVar(&o.iterations, "iterations", 6, "most iterations")
	flag.BoolVar(&o.plan, "plan", false, "print the next tests for the cells that stayed weak")
	flag.BoolVar(&o.json, "json", false, "print the report as JSON")
	flag.StringVar(&o.metricsFile, "metrics-file", "", "write the session's Prometheus metrics to this file (text format) when it ends")
	flag.Parse()
	if flag.NArg() > 0 {
		// flag stops at the first argument that is not a flag: whatever
		// follows it would be silently ignored.
		fmt.Fprintf(os.Stderr, "closedloop: unexpected argument %q: this command takes flags only (-h lists them)\n", flag.Arg(0))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "closedloop:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, o options) error {
	sc, err := tune.ScenarioByName(o.scenario, o.seed)
	if err != nil {
		return err
	}
	sc.Delay, sc.RPMStep = o.delay, o.rpmStep
	cfg, err := sc.Config()
	if err != nil {
		return err
	}
	cfg.LearnDelay = o.learn
	cfg.MaxIterations = o.iterations
	var (
		reg *prometheus.Registry
		m   *metrics.Metrics
	)
	if o.metricsFile != "" {
		reg = prometheus.NewRegistry()
		if m, err = metrics.New(metrics.Options{Registerer: reg, Environment: "closedloop"}); err != nil {
			return err
		}
	}
	m.IncVirtualTuning(metrics.TuningRunning)
	start := time.Now()
	rep, err := tune.Run(ctx, cfg)
	recordSession(m, rep, err, ctx.Err() != nil)
	if reg != nil {
		// Written whatever the outcome: a failed session is a sample too.
		if werr := prometheus.WriteToTextfile(o.metricsFile, reg); werr != nil {
			return errors.Join(err, fmt.Errorf("writing the metrics: %w", werr))
		}
	}
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	var tests []tune.Test
	if o.plan {
		tests, err = tune.Planner(rep.Result, tune.PlannerOptions{
			// The plan's range: 30 kPa and up, to 300 below the redline.
			Reachable: func(rpm, mapKPa float64) bool { return mapKPa >= 30 && rpm <= 5500 },
		})
		if err != nil {
			return err
		}
	}
	if o.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Scenario tune.Scenario `json:"scenario"`
			Report   *tune.Report  `json:"report"`
			Next     []tune.Test   `json:"next_tests,omitempty"`
		}{sc, rep, tests})
	}
	fmt.Fprintf(w, "scenario %s (front %+.0f %%, rear %+.0f %%, spread %.0f %%), seed %d, delay %v, learned: %v\n\n",
		sc.Name, sc.FrontPct, sc.RearPct, sc.SpreadPct, sc.Seed, sc.Delay, o.learn)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "iter\tmax AFR err\ton kept cells\tmean\tRMS\tVE err RMS %\tVE err max %\tcells\tnew\tcorrected\tconverged\tpeak HP\tdelay\t")
	for _, it := range rep.Iterations {
		d := "-"
		if o.learn || it.Delay != 0 {
			d = it.Delay.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.2f\t%.2f\t%d\t%d\t%d\t%d\t%.1f\t%s\t\n", it.N, it.MaxAFRError, it.MaxAFRErrorKept, it.MeanAFRError, it.RMSAFRError,
			it.RMSVEErrorPct, it.MaxVEErrorPct, it.CellsCovered, it.CellsNew, it.CellsCorrected, it.CellsConverged, it.PeakHP, d)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s after %d iterations in %v; the tables of iteration %d against the truth on covered cells: VE error RMS %.2f %%, max %.2f %%\n",
		rep.Status, len(rep.Iterations), elapsed.Round(time.Millisecond), rep.Best, rep.Final.RMSVEErrorPct, rep.Final.MaxVEErrorPct)
	if math.IsNaN(rep.Final.RMSVEErrorPct) {
		return errors.New("no VE error: the session had no truth to score against")
	}
	if o.plan {
		fmt.Fprintf(w, "\nnext tests (%.0f s):\n", tune.TotalSeconds(tests))
		for _, t := range tests {
			switch t.Kind {
			case "hold":
				load := fmt.Sprintf("%.0f kPa", t.MAPKPa)
				if t.TPS > 0 {
					load = fmt.Sprintf("%.0f %% TPS", t.TPS)
				}
				fmt.Fprintf(w, "  hold  %5.0f rpm at %s for %.1f s\n", t.RPM, load, t.Seconds)
			default:
				fmt.Fprintf(w, "  %-5s %5.0f-%.0f rpm at %.0f kPa, %d pass(es), %.1f s\n", t.Kind, t.RPM, t.EndRPM, t.MAPKPa, t.Passes, t.Seconds)
			}
		}
	}
	return nil
}

// recordSession records a finished session in m: its outcome (converged;
// stopped when cancelled; failed when it ended oscillating, out of
// iterations or with an error), the iterations a converged one took, and
// the analysis of each iteration that completed.
func recordSession(m *metrics.Metrics, rep *tune.Report, err error, cancelled bool) {
	if rep != nil {
		for _, it := range rep.Iterations {
			m.ObserveAnalysis(metrics.StatusSuccess, metrics.SourceSimulator, it.Elapsed)
		}
	}
	switch {
	case err != nil && cancelled:
		m.IncVirtualTuning(metrics.TuningStopped)
	case err != nil:
		m.IncVirtualTuning(metrics.TuningFailed)
	case rep.Status == tune.Converged:
		m.IncVirtualTuning(metrics.TuningConverged)
		m.ObserveVirtualTuningIterations(len(rep.Iterations))
	default:
		m.IncVirtualTuning(metrics.TuningFailed)
	}
}
