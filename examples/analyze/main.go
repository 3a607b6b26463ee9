// Command analyze turns a dyno or ECU log into VE corrections. It reads the
// log (WinPEP8, Power Vision, MegaLogViewer/TunerStudio .msl, .csv and .mlg,
// HP Tuners CSV, generic CSV; the format is detected from the content),
// prints what it found in each column and what it made of it, analyzes it
// with the default analyzer and writes the correction grids, paste-ready
// blocks, maps, spark suggestions, a report and a JSON document into an
// output folder, with heatmap pictures (PNG and SVG) of each cylinder's
// correction, AFR error and coverage next to the CSVs (-no-images skips
// them; the colour scale is internal/colorscale's, the web UI's).
//
//	go run ./examples/analyze -out out testdata/sample_pulls.csv
//	go run ./examples/analyze testdata/sample_pulls.csv -out out      # flags after the log work too
//	go run ./examples/analyze -map afr="LC2 AFR2" -unit ect=C LOG     # name a column, state a unit
//	go run ./examples/analyze -targets targets.csv LOG                # the ECU's target table and grid
//	go run ./examples/analyze -simulate -out out
//	go run ./examples/analyze -compat -out out old_log.csv            # the predecessor's files, byte for byte
//
// Exit status: 0 when corrections were written; 3 (ve.ExitNoCorrections)
// when the log was refused (no live wideband, no target, no load) or
// analyzed without a single cell the data proves, after printing why and
// what to try; 2 for a usage error; 1 for anything else.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/ve"
)

type config struct {
	out           string
	simulate      bool
	compat        bool
	weighting     string
	attribution   string
	estimator     string
	balance       string
	clamp         float64
	smooth        int
	minSamples    float64
	delay         time.Duration
	noLearnDelay  bool
	targets       string
	targetAFR     float64
	targetDefault bool
	base          string
	rpmAxis       string
	loadAxis      string
	load          string
	maps          listFlag
	units         listFlag
	format        string
	maxBadRows    int
	fuel          string
	quiet         bool
	seed          uint64
	noImages      bool
}

// listFlag collects a repeatable flag's values.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// errUsage marks errors that are the command line's fault (exit status 2).
var errUsage = errors.New("usage")

func newFlags(c *config) *flag.FlagSet {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	fs.StringVar(&c.out, "out", "out", "output folder")
	fs.BoolVar(&c.simulate, "simulate", false, "analyze a simulated dyno session instead of a log file")
	fs.Uint64Var(&c.seed, "seed", 1, "simulator seed (with -simulate)")
	fs.BoolVar(&c.compat, "compat", false, "run the predecessor's toolkit (DynoAI3Compat) and write its files")
	fs.StringVar(&c.weighting, "weighting", "equal", "sample weighting: equal, torque or power")
	fs.StringVar(&c.attribution, "attribution", "bilinear", "how samples are shared among nodes: bilinear or nearest")
	fs.StringVar(&c.estimator, "estimator", "fit", "node estimate: fit (least squares on the bilinear weights) or mean (cell means)")
	fs.StringVar(&c.balance, "balance", "to_target", "cylinder balance trims: to_target, equalize, match_first or none (needs a wideband per cylinder)")
	fs.Float64Var(&c.clamp, "clamp", 15, "clamp corrections to +/- this percent")
	fs.IntVar(&c.smooth, "smooth", -1, "K1/K2 smoothing passes (0..5); -1 disables smoothing")
	fs.Float64Var(&c.minSamples, "min-samples", 5, "evidence (effective samples) a node needs before it is corrected")
	fs.DurationVar(&c.delay, "delay", 0, "wideband transport delay: the fallback when it cannot be learned, or the delay with -no-learn-delay")
	fs.BoolVar(&c.noLearnDelay, "no-learn-delay", false, "do not learn the wideband delay from the log; undo -delay as given")
	fs.StringVar(&c.targets, "targets", "", "target AFR table CSV (RPM x load); its grid becomes the output grid")
	fs.Float64Var(&c.targetAFR, "target-afr", 0, "one target AFR everywhere, for a log without a commanded AFR")
	fs.BoolVar(&c.targetDefault, "target-default", false, "the fuel's default target table, for a log without a commanded AFR")
	fs.StringVar(&c.base, "base", "", "the ECU's VE table CSV: its grid becomes the output grid")
	fs.StringVar(&c.rpmAxis, "rpm-axis", "", "output grid RPM nodes, comma-separated (with -load-axis)")
	fs.StringVar(&c.loadAxis, "load-axis", "", "output grid load nodes (kPa or %), comma-separated (with -rpm-axis)")
	fs.StringVar(&c.load, "load", "auto", "load axis: auto, map, tps (alpha-N) or load (the ECU's own)")
	fs.Var(&c.maps, "map", "use a column for a channel, CHANNEL=COLUMN (repeatable), e.g. afr=\"LC2 AFR2\", afr_f=\"WBO2 F\", map=#12")
	fs.Var(&c.units, "unit", "state a channel's unit, CHANNEL=UNIT (repeatable), e.g. ect=C, map=psi, map=psig (gauge), rpm=krpm, afr=lambda")
	fs.StringVar(&c.format, "format", "", "force the log format (winpep8, powervision, msl, mlg, hptuners, csv, proxy)")
	fs.IntVar(&c.maxBadRows, "max-bad-rows", 0, "skip up to this many malformed rows (-1: any) instead of failing")
	fs.StringVar(&c.fuel, "fuel", "gasoline", "fuel: gasoline, e10, e85, ethanol, methanol")
	fs.BoolVar(&c.quiet, "q", false, "no progress or report on stdout")
	fs.BoolVar(&c.noImages, "no-images", false, "do not draw the heatmap pictures (PNG and SVG of correction, AFR error and coverage per cylinder)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: analyze [flags] LOG [flags] | analyze -simulate [flags]\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nexit status: 0 corrections written, %d refused or nothing proven, 2 usage, 1 other errors\n", ve.ExitNoCorrections)
	}
	return fs
}

// parseArgs parses flags anywhere among args: flag stops at the first
// argument that is not a flag, and a tuner types "analyze LOG -out DIR".
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func main() {
	var c config
	fs := newFlags(&c)
	args, err := parseArgs(fs, os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err = run(ctx, c, args, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode reports err and returns the status it calls for.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "analyze:", err)
		return 2
	case errors.Is(err, ve.ErrRefused), errors.Is(err, ve.ErrNoCorrections):
		fmt.Fprintln(stderr, "analyze:", err)
		return ve.ExitNoCorrections
	}
	fmt.Fprintln(stderr, "analyze:", err)
	return 1
}

func run(ctx context.Context, c config, args []string, stdout, stderr io.Writer) error {
	if c.simulate == (len(args) == 1) {
		return fmt.Errorf("%w: give exactly one log file, or -simulate", errUsage)
	}
	if c.compat {
		if c.simulate {
			return fmt.Errorf("%w: -compat reads a log file; it cannot run on -simulate", errUsage)
		}
		return runCompat(ctx, c, args[0], stdout)
	}
	opts, err := analyzerOptions(c)
	if err != nil {
		return err
	}
	a, err := ve.New(opts)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	var src dyno.Source
	var stats func() string
	var report *dyno.ChannelReport
	if c.simulate {
		sim, err := newSimulation(c.seed)
		if err != nil {
			return err
		}
		src = sim
	} else {
		ropts, err := readOptions(c, opts)
		if err != nil {
			return err
		}
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return err
		}
		counter := &countingReader{r: f}
		rd, err := dynolog.NewReader(counter, args[0], ropts)
		if err != nil {
			var me *dynolog.MissingColumnsError
			if errors.As(err, &me) && me.Report != nil && !c.quiet {
				fmt.Fprint(stdout, me.Report)
			}
			return err
		}
		defer rd.Close()
		src, report = rd, rd.ChannelReport()
		stats = func() string {
			st := rd.Stats()
			skipped := int64(0)
			for _, n := range st.Skipped {
				skipped += n
			}
			return fmt.Sprintf("read %d rows (%d bad rows skipped, %d empty cells)", st.Rows, skipped, st.MissingCells)
		}
		if !c.quiet && info.Size() > 8<<20 {
			done := make(chan struct{})
			defer close(done)
			go progress(done, stderr, counter, info.Size())
		}
	}
	start := time.Now()
	res, err := a.Analyze(ctx, src)
	if err != nil {
		if errors.Is(err, ve.ErrRefused) && report != nil && !c.quiet {
			fmt.Fprint(stdout, report)
		}
		return err
	}
	elapsed := time.Since(start)
	names, err := res.WriteFiles(c.out)
	if err != nil {
		return err
	}
	balanceNames, balanceLine, err := writeBalance(c, res)
	if err != nil {
		return err
	}
	names = append(names, balanceNames...)
	valleyNames, valleyLines, err := writeValleys(c, res)
	if err != nil {
		return err
	}
	names = append(names, valleyNames...)
	transientNames, transientLines, err := writeTransients(ctx, c, args, res)
	if err != nil {
		return err
	}
	names = append(names, transientNames...)
	var drawn time.Duration
	if !c.noImages {
		t0 := time.Now()
		pics, err := writeImages(res, c.out)
		names = append(names, pics...)
		if err != nil {
			return err
		}
		drawn = time.Since(t0)
	}
	if !c.quiet {
		if err := res.WriteReport(stdout); err != nil {
			return err
		}
		if stats != nil {
			fmt.Fprintf(stdout, "\n%s\n", stats())
		}
		fmt.Fprintf(stdout, "analyzed %d samples in %v; wrote %d files to %s/: %s\n",
			res.Samples, elapsed.Round(time.Millisecond), len(names), c.out, strings.Join(names, ", "))
		if balanceLine != "" {
			fmt.Fprintln(stdout, balanceLine)
		}
		for _, l := range valleyLines {
			fmt.Fprintln(stdout, l)
		}
		for _, l := range decelLines(res, c.out) {
			fmt.Fprintln(stdout, l)
		}
		for _, l := range transientLines {
			fmt.Fprintln(stdout, l)
		}
		if drawn > 0 {
			fmt.Fprintf(stdout, "drew the heatmaps in %v (-no-images skips them)\n", drawn.Round(time.Millisecond))
		}
		if res.Corrected() > 0 && len(res.Cylinders) > 0 {
			name := res.Cylinders[0].Name()
			base := "YOUR_VE_" + name + ".csv"
			if len(args) > 0 {
				// The shipped sample has its ECU's tables beside it.
				if p := filepath.Join(filepath.Dir(args[0]), "ve_base_"+name+".csv"); fileExists(p) {
					base = p
				}
			}
			fmt.Fprintf(stdout, "next: apply a correction to your VE table, within limits and with a manifest for rollback:\n"+
				"  go run ./examples/vetool apply -dry-run -base %s -correction %s/VE_Multiplier_%s.csv\n", base, c.out, name)
		}
	}
	if res.Corrected() == 0 {
		return fmt.Errorf("%s: %w (see the advice above, and %s/Diagnostics.txt)", nameOf(res.Source), ve.ErrNoCorrections, c.out)
	}
	return nil
}

func nameOf(s string) string {
	if s == "" {
		return "the log"
	}
	return s
}

// readOptions turns the channel flags into reader options.
func readOptions(c config, o ve.Options) (dynolog.ReadOptions, error) {
	ro := dynolog.ReadOptions{MaxBadRows: c.maxBadRows, StoichAFR: o.Fuel.Stoich, Parallel: true, Format: c.format}
	for _, m := range c.maps {
		spec, col, ok := strings.Cut(m, "=")
		if !ok || col == "" {
			return ro, fmt.Errorf("%w: -map %q: want CHANNEL=COLUMN, e.g. afr=\"LC2 AFR2\"", errUsage, m)
		}
		ch, cyl, err := dynolog.ParseChannelSpec(spec)
		if err != nil {
			return ro, fmt.Errorf("%w: -map %q: %w", errUsage, m, err)
		}
		ro.Map = append(ro.Map, dynolog.ColumnMapping{Channel: ch, Cyl: cyl, Column: strings.Trim(col, `"'`)})
	}
	for _, u := range c.units {
		spec, name, ok := strings.Cut(u, "=")
		if !ok {
			return ro, fmt.Errorf("%w: -unit %q: want CHANNEL=UNIT, e.g. ect=C", errUsage, u)
		}
		ch, _, err := dynolog.ParseChannelSpec(spec)
		if err != nil {
			return ro, fmt.Errorf("%w: -unit %q: %w", errUsage, u, err)
		}
		unit, gauge, err := parseUnit(name)
		if err != nil {
			return ro, fmt.Errorf("%w: -unit %q: %w", errUsage, u, err)
		}
		if unit != dyno.UnitAuto && !ch.Accepts(unit) {
			return ro, fmt.Errorf("%w: -unit %q: %v does not measure %v", errUsage, u, unit, ch)
		}
		if ro.ChannelUnits == nil {
			ro.ChannelUnits = map[dyno.Channel]dyno.Unit{}
		}
		if unit != dyno.UnitAuto {
			ro.ChannelUnits[ch] = unit
		}
		if gauge {
			ro.Gauge = ro.Gauge.With(ch)
		}
	}
	return ro, nil
}

// parseUnit reads a unit as tuners write it, with a "g" suffix (psig,
// barg, kpag) for gauge pressure.
func parseUnit(s string) (dyno.Unit, bool, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	for _, g := range []string{"psig", "barg", "kpag"} {
		if l == g {
			u, _ := dyno.ParseUnit(strings.TrimSuffix(l, "g"))
			return u, true, nil
		}
	}
	if strings.HasSuffix(l, " gauge") || strings.HasSuffix(l, "(g)") {
		base := strings.TrimSuffix(strings.TrimSuffix(l, " gauge"), "(g)")
		if u, ok := dyno.ParseUnit(base); ok {
			return u, true, nil
		}
	}
	u, ok := dyno.ParseUnit(l)
	if !ok || u == dyno.UnitAuto {
		return dyno.UnitAuto, false, fmt.Errorf("unknown unit %q (try C, F, K, kPa, psi, psig, bar, inHg, rpm, krpm, AFR, lambda, %%)", s)
	}
	return u, false, nil
}

func analyzerOptions(c config) (ve.Options, error) {
	var o ve.Options
	switch c.weighting {
	case "equal":
		o.Weighting = ve.WeightEqual
	case "torque":
		o.Weighting = ve.WeightTorque
	case "power", "hp":
		o.Weighting = ve.WeightPower
	default:
		return o, fmt.Errorf("%w: -weighting %q: want equal, torque or power", errUsage, c.weighting)
	}
	switch c.attribution {
	case "bilinear":
		o.Attribution = ve.Bilinear
	case "nearest":
		o.Attribution = ve.NearestCell
	default:
		return o, fmt.Errorf("%w: -attribution %q: want bilinear or nearest", errUsage, c.attribution)
	}
	switch c.estimator {
	case "fit", "":
		o.Estimator = ve.NodeFit
	case "mean":
		o.Estimator = ve.CellMean
	default:
		return o, fmt.Errorf("%w: -estimator %q: want fit or mean", errUsage, c.estimator)
	}
	if c.clamp <= 0 {
		return o, fmt.Errorf("%w: -clamp %v: must be positive", errUsage, c.clamp)
	}
	o.ClampPercent = c.clamp
	if c.smooth >= 0 {
		o.Smoothing = ve.Smoothing{Kernels: true, Passes: c.smooth}
	}
	o.MinSamples = c.minSamples
	o.SensorDelay = dyno.TransportDelay{Fixed: c.delay}
	o.NoLearnDelay = c.noLearnDelay
	load, err := ve.ParseLoadAxis(c.load)
	if err != nil {
		return o, fmt.Errorf("%w: -load: %w", errUsage, err)
	}
	o.Load = load
	fuel, err := afr.FuelByName(c.fuel)
	if err != nil {
		return o, fmt.Errorf("%w: -fuel: %w", errUsage, err)
	}
	o.Fuel = fuel
	n := 0
	for _, set := range []bool{c.targets != "", c.targetAFR != 0, c.targetDefault} {
		if set {
			n++
		}
	}
	if n > 1 {
		return o, fmt.Errorf("%w: give one of -targets, -target-afr and -target-default", errUsage)
	}
	switch {
	case c.targets != "":
		t, err := afr.LoadTargetsCSV(c.targets, afr.TargetOptions{})
		if err != nil {
			return o, err
		}
		o.Targets = t
		o.Grid = ve.Grid{RPM: t.RPM(), MAP: t.MAP()}
	case c.targetAFR != 0:
		if !(c.targetAFR >= fuel.MinAFR && c.targetAFR <= fuel.MaxAFR) {
			return o, fmt.Errorf("%w: -target-afr %v outside %s's range %v..%v", errUsage, c.targetAFR, fuel.Name, fuel.MinAFR, fuel.MaxAFR)
		}
		o.Targets = ve.ConstantTarget(c.targetAFR)
	case c.targetDefault:
		o.Targets = afr.DefaultTargetsFor(fuel)
	}
	if c.base != "" {
		f, err := os.Open(c.base)
		if err != nil {
			return o, err
		}
		t, err := ve.ReadTableCSV(f, c.base)
		f.Close()
		if err != nil {
			return o, err
		}
		o.Grid = ve.GridOf(t)
	}
	if c.rpmAxis != "" || c.loadAxis != "" {
		if c.rpmAxis == "" || c.loadAxis == "" {
			return o, fmt.Errorf("%w: give -rpm-axis and -load-axis together", errUsage)
		}
		rpm, err := parseAxis(c.rpmAxis)
		if err != nil {
			return o, fmt.Errorf("%w: -rpm-axis: %w", errUsage, err)
		}
		ld, err := parseAxis(c.loadAxis)
		if err != nil {
			return o, fmt.Errorf("%w: -load-axis: %w", errUsage, err)
		}
		o.Grid = ve.Grid{RPM: rpm, MAP: ld}
	}
	return o, nil
}

func parseAxis(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func runCompat(ctx context.Context, c config, path string, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	opts := ve.DefaultDynoAI3Options()
	if c.clamp != 15 {
		opts.Clamp = c.clamp
	}
	if c.smooth >= 0 {
		opts.SmoothPasses = c.smooth
	}
	if c.weighting == "power" || c.weighting == "hp" {
		opts.Weighting = ve.WeightPower
	}
	res, err := ve.DynoAI3Compat(ctx, f, path, opts)
	if err != nil {
		return err
	}
	names, err := res.WriteFiles(c.out)
	if err != nil {
		return err
	}
	if !c.quiet {
		fmt.Fprintf(stdout, "DynoAI3 compatibility run on %s (%s format, %d rows, %d cells clamped)\n", path, res.Format, res.Rows, res.Clamped)
		fmt.Fprintf(stdout, "its confidence score %.1f%% (grade %s), %d anomalies, %d decisions in session_replay.json\n",
			res.Confidence.Overall, res.Confidence.Grade, len(res.Anomalies), len(res.SessionReplay.Decisions))
		fmt.Fprintln(stdout, "note: the VE delta keeps the predecessor's sign, (commanded - measured) / measured; the default analyzer uses measured / target")
		fmt.Fprintf(stdout, "wrote %d files to %s/: %s\n", len(names), c.out, strings.Join(names, ", "))
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func progress(done <-chan struct{}, w io.Writer, c *countingReader, size int64) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			fmt.Fprintf(w, "\r%-40s\r", "")
			return
		case <-t.C:
			fmt.Fprintf(w, "\rreading: %5.1f %% of %d MiB", 100*float64(c.n.Load())/float64(size), size>>20)
		}
	}
}

// fileExists reports whether path names a regular file.
func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}
