package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/dynoai/dynoai/dyno/dynolog"

	"github.com/dynoai/dynoai/ve"
)

// decelLines describes the decel analysis's popping-prone cells, if any.
func decelLines(res *ve.Result, out string) []string {
	var lines []string
	for _, d := range res.Decel {
		if len(d.PopProne) == 0 {
			continue
		}
		worst := d.PopProne[0]
		for _, c := range d.PopProne {
			if c.LeanPct > worst.LeanPct {
				worst = c
			}
		}
		lines = append(lines, fmt.Sprintf("decel: %s pops lean in %d cells on closed throttle (up to %.1f %% lean at %g rpm / %g): enrich the decel fuel there by the figures in %s/Decel_Enrichment_%s.csv",
			d.Name, len(d.PopProne), worst.LeanPct, worst.RPM, worst.Load, out, d.Name))
	}
	return lines
}

// writeTransients reads the log a second time for its tip-ins
// (ve.Transients) and writes Transient_Fuel.json. The second pass is on
// purpose: tip-ins are judged against the target of the mixture the
// wideband reads, which needs the delay the analysis learned while it read
// the log (a live caller that already knows its delay feeds a
// ve.TransientScan on the way instead). It returns the file and a line per
// throttle-rate bin with a suggestion; nothing for a simulated session
// (-simulate) or a log without time, throttle or wideband.
func writeTransients(ctx context.Context, c config, args []string, res *ve.Result) ([]string, []string, error) {
	if len(args) != 1 {
		return nil, nil, nil
	}
	ropts, err := readOptions(c, res.Options)
	if err != nil {
		return nil, nil, err
	}
	src, err := dynolog.Open(args[0], ropts)
	if err != nil {
		return nil, nil, err
	}
	defer src.Close()
	tr, err := ve.Transients(ctx, src, ve.TransientOptions{Stoich: res.Options.Fuel.Stoich, Delay: res.Delay})
	if err != nil {
		return nil, nil, err
	}
	if tr.Note != "" || len(tr.Events) == 0 {
		return nil, nil, nil
	}
	names, err := tr.WriteFiles(c.out)
	if err != nil {
		return names, nil, err
	}
	var lines []string
	for _, b := range tr.Bins {
		if b.ChangePct != 0 {
			lines = append(lines, fmt.Sprintf("tip-ins at %g+ %%/s throttle: %s", b.From, b.Suggestion))
		}
	}
	return names, lines, nil
}

// writeValleys looks for torque valleys across RPM at high load
// (ve.SparkValleys) and writes Spark_Valleys.csv and Spark_Valleys.json. It
// returns the files written and a line per valley for the tuner.
func writeValleys(c config, res *ve.Result) ([]string, []string, error) {
	valleys, err := ve.SparkValleys(res, ve.ValleyOptions{})
	if err != nil {
		return nil, nil, err
	}
	names, err := ve.WriteValleys(c.out, valleys)
	if err != nil {
		return names, nil, err
	}
	var lines []string
	for _, v := range valleys {
		lines = append(lines, fmt.Sprintf("spark valley at %g kPa (confidence %.0f %%): %s", v.Load, 100*v.Confidence, v.Suggestion))
	}
	return names, lines, nil
}

// writeBalance compares the cylinders (ve.Balance) when the log has a
// wideband per cylinder and writes Balance_Trim_*.csv and
// Cylinder_Balance_Report.json next to the corrections. It returns the
// files written and a line for the tuner; nothing for -balance none or a
// single wideband.
func writeBalance(c config, res *ve.Result) ([]string, string, error) {
	if c.balance == "none" {
		return nil, "", nil
	}
	mode, err := ve.ParseBalanceMode(c.balance)
	if err != nil {
		return nil, "", fmt.Errorf("%w: -balance: %v", errUsage, err)
	}
	rep, err := ve.Balance(res, ve.BalanceOptions{Mode: mode})
	switch {
	case errors.Is(err, ve.ErrBalanceOneSensor) || (err == nil && len(rep.Cylinders) < 2):
		return nil, "", nil
	case err != nil && len(res.Cylinders) < 2:
		return nil, "", nil
	case err != nil:
		return nil, "", err
	}
	names, err := rep.WriteFiles(c.out)
	if err != nil {
		return names, "", err
	}
	line := fmt.Sprintf("balance (%s): %d of %d compared cells imbalanced, max spread %.1f %% between cylinders; trims in %s/Balance_Trim_*.csv",
		mode, rep.Imbalanced, rep.Analysed, rep.MaxSpreadPct, c.out)
	for _, a := range rep.Anomalies {
		line += "\n  " + a
	}
	return names, line, nil
}
