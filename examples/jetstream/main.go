// Command jetstream picks up Jetstream runs, converts them to dyno samples,
// summarises each one (rows, peak power and torque, mean AFR per cylinder)
// and records it, printing progress as it goes.
//
// Usage:
//
//	jetstream -stub -once                 the seven stub runs, once, in memory
//	jetstream -url URL -db runs.db        poll a Jetstream API until Ctrl-C, SQLite store
//
// Without -url the URL and key come from JETSTREAM_API_URL and
// JETSTREAM_API_KEY; the interval from JETSTREAM_POLL_INTERVAL. -stub (or
// JETSTREAM_STUB_MODE=true) serves the predecessor's sample runs, simulated
// by the dyno simulator, from an in-process fake on 127.0.0.1. The key is
// only ever printed masked.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
	"github.com/dynoai/dynoai/jetstream/runstorestate"
	"github.com/dynoai/dynoai/runstore/sqlstore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit code (0 ok, 1
// failure, 2 usage).
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := jetstream.ConfigFromEnv(lookup)
	if err != nil {
		fmt.Fprintln(stderr, "jetstream:", err)
		return 2
	}
	stubEnv, err := jetstream.StubMode(lookup)
	if err != nil {
		fmt.Fprintln(stderr, "jetstream:", err)
		return 2
	}
	fl := flag.NewFlagSet("jetstream", flag.ContinueOnError)
	fl.SetOutput(stderr)
	url := fl.String("url", cfg.APIURL, "Jetstream API base URL")
	key := fl.String("key", cfg.APIKey, "API key (default $JETSTREAM_API_KEY)")
	stub := fl.Bool("stub", stubEnv, "serve the stub runs from an in-process fake")
	once := fl.Bool("once", false, "poll once and exit")
	interval := fl.Duration("interval", cfg.PollInterval, "time between polls")
	dbPath := fl.String("db", "", "SQLite run store (default: in memory)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "jetstream: unexpected argument %q: this command takes flags only (-h lists them)\n", fl.Arg(0))
		return 2
	}
	if *stub {
		srv, err := jetstreamtest.NewStub(ctx, jetstreamtest.Options{APIKey: "stub-key-0123456789"})
		if err != nil {
			fmt.Fprintln(stderr, "jetstream:", err)
			return 1
		}
		defer srv.Close()
		*url, *key = srv.URL, "stub-key-0123456789"
	}
	if *url == "" || *key == "" {
		fmt.Fprintln(stderr, "jetstream: need -url and a key ($JETSTREAM_API_KEY), or -stub")
		return 2
	}
	client, err := jetstream.NewHTTPClient(jetstream.HTTPOptions{BaseURL: *url, APIKey: *key})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	var store jetstream.StateStore = jetstream.NewMemoryStore()
	if *dbPath != "" {
		db, err := sqlstore.OpenSQLite(ctx, *dbPath, sqlstore.Options{})
		if err != nil {
			fmt.Fprintln(stderr, "jetstream:", err)
			return 1
		}
		defer db.Close()
		store = runstorestate.New(db, runstorestate.Options{CursorPath: *dbPath + ".cursor.json"})
	}
	p, err := jetstream.NewPoller(client, store, jetstream.ProcessorFunc(summarise), jetstream.PollerOptions{Interval: *interval})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	fmt.Fprintf(stdout, "polling %s (key %s)\n", *url, jetstream.MaskKey(*key))
	events, unsubscribe := p.Subscribe(256)
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for e := range events {
			switch {
			case e.Status == jetstream.StatusDone:
				fmt.Fprintf(stdout, "%-16s done: %d rows, peak %.1f HP @ %.0f rpm, %.1f ft-lb, AFR %.2f/%.2f\n", e.RunID, e.Outcome.Rows,
					e.Outcome.Summary["peak_hp"], e.Outcome.Summary["peak_hp_rpm"], e.Outcome.Summary["peak_torque"],
					e.Outcome.Summary["afr_front_mean"], e.Outcome.Summary["afr_rear_mean"])
			case e.Err != "":
				fmt.Fprintf(stdout, "%-16s %s (attempt %d): %s\n", e.RunID, e.Status, e.Attempt, e.Err)
			}
		}
	}()
	if *once {
		res, err := p.Poll(ctx)
		unsubscribe()
		<-printed
		fmt.Fprintf(stdout, "%d new, %d done, %d failed, %d to retry\n", len(res.New), len(res.Processed), len(res.Failed), len(res.Retrying))
		if err != nil {
			fmt.Fprintln(stderr, "jetstream:", err)
			return 1
		}
		return 0
	}
	err = p.Run(ctx)
	unsubscribe()
	<-printed
	st := p.Status()
	fmt.Fprintf(stdout, "stopped: %d done, %d failed, cursor %s\n", st.Done, st.Failed, st.Cursor.Format(time.RFC3339))
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "jetstream:", err)
		return 1
	}
	return 0
}

// summarise is the analysis step of this example: rows, peak power and
// torque, and the mean AFR of each cylinder over the pull.
func summarise(ctx context.Context, run jetstream.RunMetadata, src dyno.Source) (jetstream.Outcome, error) {
	var s dyno.Sample
	peakHP, peakRPM, peakTQ := 0.0, 0.0, 0.0
	var afrSum [2]float64
	var afrN [2]int
	for {
		err := src.Next(ctx, &s)
		if err == io.EOF {
			break
		}
		if err != nil {
			return jetstream.Outcome{}, err
		}
		if dyno.Has(s.Torque) && dyno.Has(s.RPM) {
			if hp := s.Torque * s.RPM / 5252; hp > peakHP {
				peakHP, peakRPM = hp, s.RPM
			}
			peakTQ = math.Max(peakTQ, s.Torque)
		}
		for c := range 2 {
			if dyno.Has(s.AFR[c]) {
				afrSum[c] += s.AFR[c]
				afrN[c]++
			}
		}
	}
	sum := map[string]float64{"peak_hp": peakHP, "peak_hp_rpm": peakRPM, "peak_torque": peakTQ}
	for c, name := range []string{"afr_front_mean", "afr_rear_mean"} {
		if afrN[c] > 0 {
			sum[name] = afrSum[c] / float64(afrN[c])
		}
	}
	return jetstream.Outcome{Summary: sum}, nil
}
