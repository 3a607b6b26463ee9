// Command jetdrive listens to, records, replays and simulates JetDrive, the
// live-data protocol of Dynojet dynos.
//
//	jetdrive listen   [-iface loopback] [-duration 10s]      discover providers, print a live table
//	jetdrive record   -o run.jdcap [-duration 60s]           record raw datagrams
//	jetdrive replay   -i run.jdcap [-speed 1] [-net]         print the samples, or send them to the network
//	jetdrive simulate [-profile m8_114] [-loop]              be a dyno on the network
//
// On one machine, run "jetdrive simulate -iface loopback" in one shell and
// "jetdrive listen -iface loopback" in another. Linux needs multicast on
// the loopback interface: sudo ip link set lo multicast on.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynosim"
	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/jetdrive/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "jetdrive:", err)
		os.Exit(1)
	}
}

const usage = `usage: jetdrive <listen|record|replay|simulate> [flags] [FILE]
flags may come before or after the command and the file;
run "jetdrive <command> -h" for a command's flags`

// netFlags are the network flags every command shares.
type netFlags struct {
	iface, groups string
	port          int
	verbose       bool
}

func (n *netFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&n.iface, "iface", "", `interface name or address, "loopback", or "" for the default route`)
	fs.StringVar(&n.groups, "group", jetdrive.DefaultGroup.String(), "multicast groups to join, comma-separated (the first one is sent to)")
	fs.IntVar(&n.port, "port", wire.DefaultPort, "UDP port")
	fs.BoolVar(&n.verbose, "v", false, "log protocol events to stderr")
}

func (n *netFlags) config() (jetdrive.NetConfig, error) {
	cfg := jetdrive.NetConfig{Interface: n.iface, Port: n.port}
	for _, g := range strings.Split(n.groups, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(g))
		if err != nil {
			return cfg, fmt.Errorf("-group %q: %w", g, err)
		}
		cfg.Groups = append(cfg.Groups, a)
	}
	return cfg, nil
}

func (n *netFlags) logger(stderr io.Writer) *slog.Logger {
	if !n.verbose {
		return nil
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// commands are the subcommands; the first argument that names one is the
// command, so flags may come before it as well as after.
var commands = []string{"listen", "record", "replay", "simulate"}

// splitCommand takes the command out of args, wherever it is.
func splitCommand(args []string) (string, []string, error) {
	for i, a := range args {
		if slices.Contains(commands, a) {
			return a, append(slices.Clone(args[:i]), args[i+1:]...), nil
		}
	}
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			return "", nil, fmt.Errorf("unknown command %q\n%s", a, usage)
		}
	}
	return "", nil, errors.New(usage)
}

// parseArgs parses flags anywhere among args (flag stops at the first
// argument that is not one) and returns the others: "replay FILE -speed 0"
// and "replay -speed 0 FILE" both work.
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

// fileArg returns the one file a command names, by flag or by position.
func fileArg(cmd, flagName, flagValue string, pos []string) (string, error) {
	switch {
	case len(pos) > 1 || (len(pos) == 1 && flagValue != ""):
		return "", fmt.Errorf("%s: give one file (-%s FILE, or FILE)", cmd, flagName)
	case len(pos) == 1:
		return pos[0], nil
	case flagValue == "":
		return "", fmt.Errorf("%s: -%s is required", cmd, flagName)
	}
	return flagValue, nil
}

// noArgs refuses positional arguments a command does not take.
func noArgs(cmd string, pos []string) error {
	if len(pos) > 0 {
		return fmt.Errorf("%s: unexpected argument %q", cmd, pos[0])
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd, args, err := splitCommand(args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var nf netFlags
	nf.register(fs)
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	switch cmd {
	case "listen":
		every := fs.Duration("every", time.Second, "table refresh interval")
		passive := fs.Bool("passive", false, "never transmit (no pings, no channel requests)")
		pos, err := parseArgs(fs, args)
		if err != nil {
			return err
		}
		if err := noArgs(cmd, pos); err != nil {
			return err
		}
		ctx, cancel := withDuration(ctx, *duration)
		defer cancel()
		return listen(ctx, &nf, *every, *passive, stdout, stderr)
	case "record":
		out := fs.String("o", "", "capture file to write (required; or give it as the argument)")
		pos, err := parseArgs(fs, args)
		if err != nil {
			return err
		}
		file, err := fileArg(cmd, "o", *out, pos)
		if err != nil {
			return err
		}
		ctx, cancel := withDuration(ctx, *duration)
		defer cancel()
		return record(ctx, &nf, file, stdout)
	case "replay":
		in := fs.String("i", "", "capture file to read (required; or give it as the argument)")
		speed := fs.Float64("speed", 1, "replay speed factor (0: as fast as possible)")
		toNet := fs.Bool("net", false, "send the datagrams to the network instead of printing samples")
		pos, err := parseArgs(fs, args)
		if err != nil {
			return err
		}
		file, err := fileArg(cmd, "i", *in, pos)
		if err != nil {
			return err
		}
		ctx, cancel := withDuration(ctx, *duration)
		defer cancel()
		return replay(ctx, &nf, file, *speed, *toNet, stdout)
	case "simulate":
		profile := fs.String("profile", "m8_114", "engine profile: m8_114, m8_131 or twin_cam_103")
		name := fs.String("name", "DynoAI Simulator", "provider name")
		seed := fs.Uint64("seed", 1, "noise seed")
		rate := fs.Float64("rate", 0, "samples per second (0: the simulator's own 100 Hz timing)")
		loop := fs.Bool("loop", false, "restart the test plan when it ends")
		pos, err := parseArgs(fs, args)
		if err != nil {
			return err
		}
		if err := noArgs(cmd, pos); err != nil {
			return err
		}
		ctx, cancel := withDuration(ctx, *duration)
		defer cancel()
		return simulate(ctx, &nf, *profile, *name, *seed, *rate, *loop, stdout, stderr)
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

func withDuration(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// finished reports whether err is just the end of the command's time.
func finished(err error) bool {
	return err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF)
}

func listen(ctx context.Context, nf *netFlags, every time.Duration, passive bool, stdout, stderr io.Writer) error {
	netCfg, err := nf.config()
	if err != nil {
		return err
	}
	c, err := jetdrive.NewClient(ctx, jetdrive.ClientConfig{Net: netCfg, Passive: passive, Logger: nf.logger(stderr)})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "listening on %s port %d\n", ifaceName(netCfg), port(netCfg))
	// Drain samples so the buffer never overflows; keep the latest.
	latest := make(chan dyno.Sample, 1)
	drained := make(chan struct{})
	defer func() {
		c.Close()
		<-drained
	}()
	go func() {
		defer close(drained)
		s := dyno.NewSample()
		for c.Next(ctx, &s) == nil {
			select {
			case <-latest:
			default:
			}
			latest <- s
		}
	}()
	t := time.NewTicker(every)
	defer t.Stop()
	var last dyno.Sample
	for {
		select {
		case <-ctx.Done():
			printTable(stdout, c.Stats(), c.Mapping(), last)
			return nil
		case s := <-latest:
			last = s
		case <-t.C:
			printTable(stdout, c.Stats(), c.Mapping(), last)
		}
	}
}

func printTable(w io.Writer, st jetdrive.Stats, m []jetdrive.Assignment, s dyno.Sample) {
	fmt.Fprintf(w, "== %s  host 0x%04X  datagrams %d  samples %d  overflow %d  errors %+v\n",
		time.Now().Format("15:04:05"), st.HostID, st.Datagrams, st.Samples, st.Overflow, st.Errors)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, p := range st.Providers {
		state := "live"
		if p.Stale {
			state = "stale"
		}
		fmt.Fprintf(tw, "provider 0x%04X\t%q\t%s\t%s\tseq dropped %d reordered %d dup %d\tsynced %v\n",
			p.Host, p.Name, p.Addr, state, p.Seq.Dropped, p.Seq.Reordered, p.Seq.Duplicates, p.Synced)
		for _, ch := range p.Channels {
			flags := ""
			if !ch.Known {
				flags += " unknown"
			}
			if ch.Stale {
				flags += " stale"
			}
			if ch.Frozen {
				flags += " frozen"
			}
			fmt.Fprintf(tw, "  %d\t%s\t%.3f %s\t%.1f Hz\t%s\t%s\n", ch.ID, ch.Name, ch.Last, ch.Unit.Symbol(), ch.RateHz, ch.Field, strings.TrimSpace(flags))
		}
	}
	tw.Flush()
	if len(m) > 0 {
		sort.Slice(m, func(i, j int) bool { return m[i].Field.String() < m[j].Field.String() })
		var parts []string
		for _, a := range m {
			parts = append(parts, fmt.Sprintf("%s=%.2f (%s, %.0f%%)", a.Field, a.Field.Get(&s), a.Source.Name, a.Confidence*100))
		}
		fmt.Fprintf(w, "sample @%v: %s\n", s.Time, strings.Join(parts, "  "))
	}
}

func record(ctx context.Context, nf *netFlags, path string, stdout io.Writer) error {
	netCfg, err := nf.config()
	if err != nil {
		return err
	}
	tr, err := jetdrive.Listen(ctx, netCfg)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		tr.Close()
		return err
	}
	w, err := jetdrive.NewCaptureWriter(f, time.Now())
	if err != nil {
		tr.Close()
		f.Close()
		return err
	}
	fmt.Fprintf(stdout, "recording %s port %d to %s\n", ifaceName(netCfg), port(netCfg), path)
	n, err := jetdrive.Record(ctx, tr, w)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	fmt.Fprintf(stdout, "recorded %d datagrams to %s\n", n, path)
	return err
}

func replay(ctx context.Context, nf *netFlags, path string, speed float64, toNet bool, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if toNet {
		netCfg, err := nf.config()
		if err != nil {
			return err
		}
		tr, err := jetdrive.Listen(ctx, netCfg)
		if err != nil {
			return err
		}
		defer tr.Close()
		r, err := jetdrive.NewCaptureReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		n, err := jetdrive.Replay(ctx, r, tr, speed)
		fmt.Fprintf(stdout, "replayed %d datagrams\n", n)
		if finished(err) {
			return nil
		}
		return err
	}
	src, err := jetdrive.OpenReplay(ctx, f, speed, jetdrive.ClientConfig{})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer src.Close()
	fmt.Fprintln(stdout, "time_s,rpm,map_kpa,tps,afr_front,afr_rear,torque_ftlb,power_hp")
	s := dyno.NewSample()
	for {
		err := src.Next(ctx, &s)
		if err != nil {
			if finished(err) {
				return nil
			}
			return err
		}
		fmt.Fprintf(stdout, "%.3f,%.0f,%.1f,%.1f,%.2f,%.2f,%.1f,%.1f\n", s.Time.Seconds(), s.RPM, s.MAP, s.TPS,
			s.AFR[dyno.Front], s.AFR[dyno.Rear], s.Torque, s.Power)
	}
}

func simulate(ctx context.Context, nf *netFlags, profile, name string, seed uint64, rate float64, loop bool, stdout, stderr io.Writer) error {
	prof, err := dynosim.ProfileByKey(profile)
	if err != nil {
		return err
	}
	netCfg, err := nf.config()
	if err != nil {
		return err
	}
	p, err := jetdrive.NewProvider(ctx, jetdrive.ProviderConfig{Net: netCfg, Name: name, Logger: nf.logger(stderr)}, nil)
	if err != nil {
		return err
	}
	defer p.Close()
	fmt.Fprintf(stdout, "simulating %s as provider 0x%04X %q on port %d\n", prof.Name, p.HostID(), name, netCfg.Port)
	for run := uint64(0); ; run++ {
		sim, err := dynosim.New(dynosim.Config{Profile: prof, Seed: seed + run, Noise: dynosim.TypicalNoise()})
		if err != nil {
			return err
		}
		err = p.Stream(ctx, sim, jetdrive.StreamOptions{Rate: rate})
		if !finished(err) {
			return err
		}
		if ctx.Err() != nil || !loop {
			st := p.Stats()
			fmt.Fprintf(stdout, "sent %d messages, %d values\n", st.Messages, st.Values)
			return nil
		}
	}
}

// ifaceName and port describe where a command joined, for its first line.
func ifaceName(c jetdrive.NetConfig) string {
	if c.Interface == "" {
		return "the default interface"
	}
	return c.Interface
}

func port(c jetdrive.NetConfig) int {
	if c.Port == 0 {
		return wire.DefaultPort
	}
	return c.Port
}
