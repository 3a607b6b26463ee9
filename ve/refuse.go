package ve

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dynoai/dynoai/dyno"
)

// The reasons an analysis refuses a log before reading it: what it lacks.
// The *RefusalError that wraps one names what was looked at and what would
// help. Test with errors.Is.
var (
	// ErrRefused is wrapped by every refusal.
	ErrRefused = errors.New("ve: log refused")
	// ErrNoWideband: no live measured AFR or lambda.
	ErrNoWideband = errors.New("no live wideband")
	// ErrNoTarget: no AFR target (no live commanded AFR and no Targets).
	ErrNoTarget = errors.New("no AFR target")
	// ErrNoLoad: no load axis (MAP, ECU load or throttle).
	ErrNoLoad = errors.New("no load channel")
	// ErrNoSpeed: no engine speed.
	ErrNoSpeed = errors.New("no engine speed")
	// ErrNoCorrections: the log was read and analyzed, but no node has the
	// evidence for a correction (Result.Advice says what to try). Commands
	// return it so that a log that proves nothing is not a success.
	ErrNoCorrections = errors.New("no cell has the evidence for a correction")
)

// ExitNoCorrections is the exit status of the example commands that
// analyze (analyze, jetstream, closedloop) when a log is refused or
// analyzed without a single correction (ErrRefused, ErrNoCorrections): a
// script can tell "nothing to apply" from success (0), a usage error (2)
// and other failures (1).
const ExitNoCorrections = 3

// RefusalError says why a log cannot be analyzed: what is missing, the
// columns that were candidates and why each was not used (from the
// source's channel report), and what would help. A log that lacks several
// things lists them all (Also), so one run says everything to fix.
type RefusalError struct {
	Source string
	// What is one of ErrNoWideband, ErrNoTarget, ErrNoLoad, ErrNoSpeed.
	What error
	// Candidates describes the columns that could have served and why
	// they did not.
	Candidates []string
	// Fixes lists what would help, flags of the example commands included.
	Fixes []string
	// Also holds the other things the log lacks, each with its own
	// candidates and fixes.
	Also []*RefusalError
}

// Error says what is missing, why, and what to do.
func (e *RefusalError) Error() string {
	var b strings.Builder
	b.WriteString(nameOr(e.Source))
	b.WriteString(": ")
	e.describe(&b)
	for _, a := range e.Also {
		b.WriteString("; and ")
		a.describe(&b)
	}
	return b.String()
}

func (e *RefusalError) describe(b *strings.Builder) {
	b.WriteString(e.What.Error())
	if len(e.Candidates) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(e.Candidates, "; "))
		b.WriteString(")")
	}
	if len(e.Fixes) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(e.Fixes, ", or "))
	}
}

// Unwrap returns ErrRefused, What and what Also lacks.
func (e *RefusalError) Unwrap() []error {
	out := []error{ErrRefused, e.What}
	for _, a := range e.Also {
		out = append(out, a.What)
	}
	return out
}

// candidates describes the columns of channels chs that the report left
// out, and why.
func candidates(rep *dyno.ChannelReport, chs ...dyno.Channel) []string {
	if rep == nil {
		return nil
	}
	var out []string
	for _, ch := range chs {
		for _, u := range rep.UnusedFor(ch) {
			out = append(out, fmt.Sprintf("%q: %s", u.Column, u.Reason))
		}
	}
	return out
}

// refuse checks, before reading, that the source has what an analysis
// needs: engine speed, a load axis, a wideband, a target. It reports
// everything missing at once.
func (a *analyzer) refuse(layout dyno.Layout, rep *dyno.ChannelReport) error {
	o := a.opts
	has := layout.Channels.Has
	if layout.Channels == 0 {
		return nil // an undeclared layout: look at the samples
	}
	var all []*RefusalError
	if !has(dyno.ChanRPM) {
		all = append(all, &RefusalError{Source: layout.Name, What: ErrNoSpeed, Candidates: candidates(rep, dyno.ChanRPM),
			Fixes: []string{"name the engine speed column (ReadOptions.Map; -map rpm=COLUMN)"}})
	}
	if !has(dyno.ChanAFR) && !has(dyno.ChanLambda) {
		fixes := []string{"name a live wideband column (ReadOptions.Map; -map afr=COLUMN for one sensor, -map afr_f=COLUMN -map afr_r=COLUMN per cylinder)"}
		if rep != nil && len(rep.UnusedFor(dyno.ChanAFR))+len(rep.UnusedFor(dyno.ChanLambda)) == 0 {
			fixes = append(fixes, "log a wideband: narrowband O2 voltages and fuel trims cannot measure AFR")
		}
		all = append(all, &RefusalError{Source: layout.Name, What: ErrNoWideband, Candidates: candidates(rep, dyno.ChanAFR, dyno.ChanLambda), Fixes: fixes})
	}
	if o.Targets == nil && !has(dyno.ChanAFRCommanded) {
		all = append(all, &RefusalError{Source: layout.Name, What: ErrNoTarget, Candidates: candidates(rep, dyno.ChanAFRCommanded),
			Fixes: []string{"give the ECU's target table (Options.Targets; -targets FILE)",
				"one target everywhere (ConstantTarget; -target-afr 13.2)",
				"the fuel's default targets (afr.DefaultTargetsFor; -target-default)"}})
	}
	if _, _, err := a.chooseLoad(layout, rep); err != nil {
		var re *RefusalError
		if errors.As(err, &re) {
			all = append(all, re)
		}
	}
	if len(all) == 0 {
		return nil
	}
	first := all[0]
	first.Also = all[1:]
	return first
}

// chooseLoad picks the load axis and says why, or refuses the log.
func (a *analyzer) chooseLoad(layout dyno.Layout, rep *dyno.ChannelReport) (LoadAxis, string, error) {
	has := func(c dyno.Channel) bool { return layout.Channels == 0 || layout.Channels.Has(c) }
	want := a.opts.Load
	name := map[LoadAxis]dyno.Channel{LoadMAP: dyno.ChanMAP, LoadTPS: dyno.ChanTPS, LoadECU: dyno.ChanLoad}
	if want != LoadAuto {
		if !has(name[want]) {
			return want, "", &RefusalError{Source: layout.Name, What: ErrNoLoad,
				Candidates: candidates(rep, name[want]),
				Fixes:      []string{fmt.Sprintf("the log has no live %s channel: choose another load axis (-load auto)", name[want])}}
		}
		return want, "chosen", nil
	}
	switch {
	case has(dyno.ChanMAP):
		return LoadMAP, "the log's manifold pressure", nil
	case has(dyno.ChanLoad):
		why := "no live MAP; the ECU's own load channel"
		if ci := rep.Find(dyno.ChanLoad, 0); ci != nil {
			why += fmt.Sprintf(" %q (%s)", ci.Column, ci.Unit)
		}
		return LoadECU, why, nil
	case has(dyno.ChanTPS):
		return LoadTPS, "no live MAP or ECU load; throttle position (alpha-N)", nil
	}
	return LoadAuto, "", &RefusalError{Source: layout.Name, What: ErrNoLoad,
		Candidates: candidates(rep, dyno.ChanMAP, dyno.ChanLoad, dyno.ChanTPS),
		Fixes:      []string{"name the MAP, ECU load or throttle column (ReadOptions.Map; -map map=COLUMN, -map load=COLUMN or -map tps=COLUMN)"}}
}
