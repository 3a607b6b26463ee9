// Command analyze turns a dyno log into VE corrections: it reads a WinPEP8,
// Power Vision or generic CSV log (format detected), analyzes it with the
// default analyzer, writes the correction grids, paste-ready blocks, maps,
// spark suggestions, a report and a JSON document into an output folder,
// and prints the report.
//
//	go run ./examples/analyze -out out testdata/sample_pulls.csv
//	go run ./examples/analyze -simulate -out out
//	go run ./examples/analyze -compat -out out old_log.csv   # the predecessor's files, byte for byte
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/ve"
)

type config struct {
	out         string
	simulate    bool
	compat      bool
	weighting   string
	attribution string
	clamp       float64
	smooth      int
	minSamples  float64
	delay       time.Duration
	learnDelay  bool
	targets     string
	maxBadRows  int
	fuel        string
	quiet       bool
	seed        uint64
}

func main() {
	var c config
	flag.StringVar(&c.out, "out", "out", "output folder")
	flag.BoolVar(&c.simulate, "simulate", false, "analyze a simulated dyno session instead of a log file")
	flag.Uint64Var(&c.seed, "seed", 1, "simulator seed (with -simulate)")
	flag.BoolVar(&c.compat, "compat", false, "run the predecessor's toolkit (DynoAI3Compat) and write its files")
	flag.StringVar(&c.weighting, "weighting", "equal", "sample weighting: equal, torque or power")
	flag.StringVar(&c.attribution, "attribution", "bilinear", "cell attribution: bilinear or nearest")
	flag.Float64Var(&c.clamp, "clamp", 7, "clamp corrections to +/- this percent")
	flag.IntVar(&c.smooth, "smooth", -1, "K1/K2 smoothing passes (0..5); -1 disables smoothing")
	flag.Float64Var(&c.minSamples, "min-samples", 5, "evidence a cell needs before it is corrected")
	flag.DurationVar(&c.delay, "delay", 0, "wideband transport delay to undo, e.g. 400ms")
	flag.BoolVar(&c.learnDelay, "learn-delay", false, "learn the wideband delay from the log (-delay is the fallback)")
	flag.StringVar(&c.targets, "targets", "", "target AFR table CSV (RPM x MAP); default: the log's commanded AFR")
	flag.IntVar(&c.maxBadRows, "max-bad-rows", 0, "skip up to this many malformed rows (-1: any) instead of failing")
	flag.StringVar(&c.fuel, "fuel", "gasoline", "fuel: gasoline, e10, e85, ethanol, methanol")
	flag.BoolVar(&c.quiet, "q", false, "no progress or report on stdout")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: analyze [flags] LOG.csv | analyze -simulate [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c, flag.Args(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "analyze:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, args []string, stdout, stderr io.Writer) error {
	if c.simulate == (len(args) == 1) {
		return errors.New("give exactly one log file, or -simulate")
	}
	if c.compat {
		if c.simulate {
			return errors.New("-compat reads a log file; it cannot run on -simulate")
		}
		return runCompat(ctx, c, args[0], stdout)
	}
	opts, err := analyzerOptions(c)
	if err != nil {
		return err
	}
	a, err := ve.New(opts)
	if err != nil {
		return err
	}
	var src dyno.Source
	var stats func() string
	if c.simulate {
		sim, err := newSimulation(c.seed)
		if err != nil {
			return err
		}
		src = sim
	} else {
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
		rd, err := dynolog.NewReader(counter, args[0], dynolog.ReadOptions{MaxBadRows: c.maxBadRows, StoichAFR: opts.Fuel.Stoich, Parallel: true})
		if err != nil {
			return err
		}
		defer rd.Close()
		src = rd
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
		return err
	}
	elapsed := time.Since(start)
	names, err := res.WriteFiles(c.out)
	if err != nil {
		return err
	}
	if c.quiet {
		return nil
	}
	if err := res.WriteReport(stdout); err != nil {
		return err
	}
	if stats != nil {
		fmt.Fprintf(stdout, "\n%s\n", stats())
	}
	fmt.Fprintf(stdout, "analyzed %d samples in %v; wrote %d files to %s/: %s\n",
		res.Samples, elapsed.Round(time.Millisecond), len(names), c.out, strings.Join(names, ", "))
	return nil
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
		return o, fmt.Errorf("-weighting %q: want equal, torque or power", c.weighting)
	}
	switch c.attribution {
	case "bilinear":
		o.Attribution = ve.Bilinear
	case "nearest":
		o.Attribution = ve.NearestCell
	default:
		return o, fmt.Errorf("-attribution %q: want bilinear or nearest", c.attribution)
	}
	if c.clamp <= 0 {
		return o, fmt.Errorf("-clamp %v: must be positive", c.clamp)
	}
	o.ClampPercent = c.clamp
	if c.smooth >= 0 {
		o.Smoothing = ve.Smoothing{Kernels: true, Passes: c.smooth}
	}
	o.MinSamples = c.minSamples
	o.SensorDelay = dyno.TransportDelay{Fixed: c.delay}
	o.LearnDelay = c.learnDelay
	fuel, err := afr.FuelByName(c.fuel)
	if err != nil {
		return o, err
	}
	o.Fuel = fuel
	if c.targets != "" {
		t, err := afr.LoadTargetsCSV(c.targets, afr.TargetOptions{})
		if err != nil {
			return o, err
		}
		o.Targets = t
	}
	return o, nil
}

func runCompat(ctx context.Context, c config, path string, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	opts := ve.DefaultDynoAI3Options()
	opts.Clamp = c.clamp
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
