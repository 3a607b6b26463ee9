// Command vetool applies a VE correction to a VE table and rolls it back,
// exactly, with a SHA-256 manifest:
//
//	go run ./examples/vetool apply -base ve_front.csv -correction out/VE_Multiplier_Front.csv -out ve_front_new.csv
//	go run ./examples/vetool apply -dry-run -base ve_front.csv -correction out/VE_Multiplier_Front.csv
//	go run ./examples/vetool rollback -applied ve_front_new.csv -out ve_front_restored.csv
//
// apply writes the new table, the correction it actually applied after the
// limits (<out>.correction.csv) and the manifest (<out>.manifest.json);
// rollback reads those three and refuses when any hash differs.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/dynoai/dynoai/ve"
)

func main() {
	err := run(os.Args[1:], os.Stdout)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "vetool:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "vetool:", err)
		os.Exit(1)
	}
}

const usage = `usage: vetool <command> [flags]

Commands:
  apply     apply a correction (multipliers, 1.0 = no change) to a VE table
            within authority limits, with a SHA-256 manifest
  rollback  restore the table an apply started from, bit for bit

"vetool <command> -h" lists a command's flags. For example:
  vetool apply -dry-run -base testdata/ve_base.csv -correction out/VE_Multiplier_Front.csv
`

// errUsage marks a mistake in the command line (exit status 2).
var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
}

func run(args []string, stdout io.Writer) error {
	// The command is the first argument that names one, so flags may come
	// before it as well as after; help before any command prints the usage.
	for _, a := range args {
		if a == "apply" || a == "rollback" {
			break
		}
		switch a {
		case "-h", "-help", "--help", "help":
			fmt.Fprint(stdout, usage)
			return nil
		}
	}
	for i, a := range args {
		rest := append(slices.Clone(args[:i]), args[i+1:]...)
		switch a {
		case "apply":
			return apply(rest, stdout)
		case "rollback":
			return rollback(rest, stdout)
		}
	}
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			return usageErr("unknown command %q: want apply or rollback (vetool -h)", a)
		}
	}
	return usageErr("no command\n%s", usage)
}

// parse parses a command's flags; vetool takes every file by flag, so any
// other argument is a mistake, reported as such.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("%s: unexpected argument %q (files are given by flag: -h lists them)", fs.Name(), fs.Arg(0))
	}
	return nil
}

func apply(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	basePath := fs.String("base", "", "VE table CSV to correct (RPM or MAP rows)")
	corrPath := fs.String("correction", "", "correction multipliers CSV (1.0 = no change), e.g. VE_Multiplier_Front.csv")
	out := fs.String("out", "", "where to write the corrected table")
	dry := fs.Bool("dry-run", false, "print what would change and write nothing")
	maxAdj := fs.Float64("max-adjust", 7, "clamp each multiplier to 1 +/- this percent (negative: no clamp)")
	minVE := fs.Float64("min-ve", 0, "absolute lower rail for the result")
	maxVE := fs.Float64("max-ve", 0, "absolute upper rail for the result (0 with -min-ve 0: none)")
	baseline := fs.String("baseline", "", "the tune's original VE table, for -max-cumulative")
	maxCum := fs.Float64("max-cumulative", 0, "no cell may move further than this percent from -baseline")
	comment := fs.String("comment", "", "a note for the manifest")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *basePath == "" || *corrPath == "" || (*out == "" && !*dry) {
		return usageErr("apply needs -base, -correction and -out (or -dry-run)")
	}
	base, err := readTable(*basePath)
	if err != nil {
		return err
	}
	corr, err := readTable(*corrPath)
	if err != nil {
		return err
	}
	lim := ve.Limits{MaxAdjustPercent: *maxAdj, MinVE: *minVE, MaxVE: *maxVE, MaxCumulativePercent: *maxCum}
	if *baseline != "" {
		if lim.Baseline, err = readTable(*baseline); err != nil {
			return err
		}
	}
	applied, err := ve.Apply(base, corr, ve.ApplyOptions{Limits: lim, Comment: *comment})
	if err != nil {
		return err
	}
	m := applied.Manifest
	fmt.Fprintf(stdout, "%d cells change (%d clamped, %d railed, %d capped)\n", m.CellsChanged, m.Clamped, m.Railed, m.Capped)
	for _, c := range applied.Diff {
		note := ""
		if c.Limited != "" {
			note = " (" + c.Limited + ")"
		}
		fmt.Fprintf(stdout, "  %6g rpm %5g kPa: %10g -> %-12g x%.6f%s\n", c.RPM, c.MAP, c.Before, c.After, c.Multiplier, note)
	}
	if *dry {
		fmt.Fprintln(stdout, "dry run: nothing written")
		return nil
	}
	if err := writeTable(*out, applied.Table); err != nil {
		return err
	}
	if err := writeTable(*out+".correction.csv", applied.Effective); err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out+".manifest.json", append(data, '\n'), 0o666); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s, %s.correction.csv and %s.manifest.json (result sha256 %s)\n", *out, *out, *out, m.ResultSHA256)
	return nil
}

func rollback(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rollback", flag.ContinueOnError)
	appliedPath := fs.String("applied", "", "the table apply wrote")
	out := fs.String("out", "", "where to write the restored table")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *appliedPath == "" || *out == "" {
		return usageErr("rollback needs -applied and -out")
	}
	applied, err := readTable(*appliedPath)
	if err != nil {
		return err
	}
	eff, err := readTable(*appliedPath + ".correction.csv")
	if err != nil {
		return err
	}
	data, err := os.ReadFile(*appliedPath + ".manifest.json")
	if err != nil {
		return err
	}
	var m ve.Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("%s.manifest.json: %w", *appliedPath, err)
	}
	restored, err := ve.Rollback(applied, eff, &m)
	if err != nil {
		return err
	}
	if err := writeTable(*out, restored); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s (sha256 %s, as recorded at apply)\n", *out, m.BaseSHA256)
	return nil
}

func readTable(path string) (*ve.Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ve.ReadTableCSV(f, path)
}

func writeTable(path string, t *ve.Table) error {
	var b strings.Builder
	if err := t.WriteCSV(&b, ve.CSVFormat{Cell: ve.CellFormat{Decimals: t.Precision}}); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o666)
}
