package ve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/dynoai/dynoai/dyno"
)

// Transient fuel: a tip-in (the throttle opening fast) fills the manifold
// faster than fuel reaches the cylinders, so the ECU adds acceleration
// enrichment (AE) for it; too little reads as a lean spike on the wideband
// just after the tip-in, too much as a rich one. Transients finds the tip-in
// events of a time-stamped log, measures each cylinder's AFR excursion
// against target in the window after it (the target of the mixture the
// wideband reads, Delay earlier), relative to the error once the engine
// has settled after it, so a steady VE error does not count, and, per bin
// of throttle
// rate, suggests how to change the AE table, with the evidence.

// TransientOptions configure Transients. The zero value is ready to use.
type TransientOptions struct {
	// TPSRate is the throttle rate, %/s over at least 50 ms, that starts a
	// tip-in; 0 means 40.
	TPSRate float64
	// Delay is the wideband's transport delay (the analysis's, learned or
	// given: Result.Delay): the mixture read at t was burned Delay earlier,
	// so it is judged against the target of then, and the window watched
	// starts Delay after the tip-in. The zero value is none.
	Delay dyno.TransportDelay
	// Window is how long the response is watched; 0 means 800 ms.
	Window time.Duration
	// Edges are the throttle-rate bins' lower edges in %/s, increasing;
	// nil means 40, 100, 200, 400.
	Edges []float64
	// ThresholdPct is the excursion, percent of fuel, that makes an event
	// lean or rich; 0 means 3.
	ThresholdPct float64
	// MinEvents is the events a bin needs for a suggestion; 0 means 3.
	MinEvents int
	// MaxChangePct bounds a suggested AE change; 0 means 25.
	MaxChangePct float64
	// Stoich turns a lambda channel into AFR; 0 means 14.7 (gasoline).
	Stoich float64
}

func (o TransientOptions) filled() (TransientOptions, error) {
	if err := o.Delay.Validate(); err != nil {
		return o, err
	}
	if o.TPSRate < 0 || o.Window < 0 || o.ThresholdPct < 0 || o.MinEvents < 0 || o.MaxChangePct < 0 || o.Stoich < 0 ||
		math.IsNaN(o.TPSRate+o.ThresholdPct+o.MaxChangePct+o.Stoich) {
		return o, errors.New("ve: transient options must not be negative")
	}
	if o.TPSRate == 0 {
		o.TPSRate = 40
	}
	if o.Window == 0 {
		o.Window = 800 * time.Millisecond
	}
	if o.Edges == nil {
		o.Edges = []float64{40, 100, 200, 400}
	}
	for i := 1; i < len(o.Edges); i++ {
		if !(o.Edges[i] > o.Edges[i-1]) {
			return o, errors.New("ve: transient rate edges must increase")
		}
	}
	if o.ThresholdPct == 0 {
		o.ThresholdPct = 3
	}
	if o.MinEvents == 0 {
		o.MinEvents = 3
	}
	if o.MaxChangePct == 0 {
		o.MaxChangePct = 25
	}
	if o.Stoich == 0 {
		o.Stoich = 14.7
	}
	return o, nil
}

// TransientEvent is one tip-in and the cylinders' response to it.
type TransientEvent struct {
	At      time.Duration `json:"at"`
	RPM     float64       `json:"rpm"`
	FromTPS float64       `json:"from_tps"`
	ToTPS   float64       `json:"to_tps"`
	TPSRate float64       `json:"tps_rate"` // the fastest, %/s
	Bin     int           `json:"bin"`
	// Baseline is each cylinder's error once the tip-in has settled (the
	// new steady state, VE error included), percent.
	Baseline []float64 `json:"baseline_pct"`
	// Excursion is each cylinder's largest departure from its baseline in
	// the window, percent of fuel: positive lean, negative rich.
	Excursion []float64 `json:"excursion_pct"`
	Verdict   string    `json:"verdict"` // "lean", "rich" or "ok" (the cylinders' mean)
}

// TransientBin is the events of one throttle-rate bin.
type TransientBin struct {
	From          float64 `json:"from_rate"` // %/s
	To            float64 `json:"-"`         // %/s; +Inf (null in JSON) for the last bin
	Events        int     `json:"events"`
	Lean          int     `json:"lean_events"`
	Rich          int     `json:"rich_events"`
	MeanExcursion float64 `json:"mean_excursion_pct"`
	// ChangePct is the suggested change of the AE table for these rates
	// (+ more enrichment), 0 when the bin is fine or lacks events.
	ChangePct  float64 `json:"change_pct"`
	Suggestion string  `json:"suggestion"`
}

// TransientResult is the outcome of Transients.
type TransientResult struct {
	Events []TransientEvent `json:"events"`
	Bins   []TransientBin   `json:"bins"`
	// Note says why nothing could be judged (no time, no throttle, no
	// wideband), empty otherwise.
	Note string `json:"note,omitempty"`
	// Unjudged counts the tip-ins whose target changed (to full-load
	// enrichment, say) while the wideband's delay is unknown: against a
	// moving target a delay off by a few tens of milliseconds reads as an
	// excursion, so they are left out. Give the delay to judge them.
	Unjudged int `json:"unjudged_target_changed"`
	// FromCut counts the tip-ins out of a fuel cut (the wideband reads air
	// until the mixture comes back): their excursion is the cut's, not the
	// enrichment's, so they are left out.
	FromCut int `json:"unjudged_from_fuel_cut"`
}

// fuelCutReading is the AFR from which a reading is fuel cut, not a
// mixture (the analysis's filter uses the fuel's upper AFR limit).
const fuelCutReading = 18.0

// maxTransientEvents bounds Events; the bins count them all.
const maxTransientEvents = 1000

type tipIn struct {
	ev       TransientEvent
	start    time.Duration
	peakRate float64
	lo, hi   []float64 // each cylinder's extremes of error in the window
	tlo, thi float64   // the target's extremes over the event
	skip     bool      // a tip-in out of a fuel cut: waited out, not judged
	settle   []float64 // sums of error after it, and their counts
	settled  []int
}

// transientSettle is how long after the window the new steady error is
// measured, the level the excursion is judged against.
const transientSettle = 400 * time.Millisecond

// Transients reads src to its end and judges its tip-ins (see the note
// above TransientOptions); it feeds a TransientScan.
func Transients(ctx context.Context, src dyno.Source, opts TransientOptions) (*TransientResult, error) {
	ts, err := NewTransientScan(opts)
	if err != nil {
		return nil, err
	}
	s := dyno.NewSample()
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := src.Next(ctx, &s); err != nil {
			if errors.Is(err, io.EOF) {
				return ts.Result(), nil
			}
			return nil, err
		}
		ts.Add(&s)
	}
}

// TransientScan judges tip-ins as samples are added one by one, so a
// caller that already reads a log (an analysis) can feed it on the way
// instead of reading the log again. Memory is bounded: 300 ms of history,
// one event at a time, and at most 1000 events kept. Not safe for
// concurrent use.
type TransientScan struct {
	o       TransientOptions
	res     *TransientResult
	hist    []transientPoint // the last 300 ms
	targets []transientTarget
	cur     *tipIn
	counts  []transientCount
	sawTime bool
	sawTPS  bool
	sawAFR  bool
}

type transientPoint struct {
	t   time.Duration
	tps float64
	err [dyno.MaxCylinders]float64
	n   int // cylinder slots in err
}

type transientTarget struct {
	t      time.Duration
	target [dyno.MaxCylinders]float64
}

type transientCount struct {
	n, lean, rich int
	sum           float64
}

// NewTransientScan returns a scan with opts (see TransientOptions).
func NewTransientScan(opts TransientOptions) (*TransientScan, error) {
	o, err := opts.filled()
	if err != nil {
		return nil, err
	}
	return &TransientScan{o: o, res: &TransientResult{Events: []TransientEvent{}}, counts: make([]transientCount, len(o.Edges))}, nil
}

// Add judges one sample, in time order.
func (ts *TransientScan) Add(s *dyno.Sample) {
	o := &ts.o
	if s.Time > 0 {
		ts.sawTime = true
	}
	if !dyno.Has(s.TPS) {
		return
	}
	ts.sawTPS = true
	// The wideband reads the mixture burned Delay ago: judge it against
	// the target of then, not now (a tip-in to WOT changes the target at
	// once).
	ta := transientTarget{t: s.Time}
	copy(ta.target[:], s.AFRCommanded[:])
	ts.targets = append(ts.targets, ta)
	delay := o.Delay.At(s.RPM)
	for len(ts.targets) > 1 && s.Time-ts.targets[1].t >= delay {
		ts.targets = ts.targets[1:]
	}
	then := ts.targets[0].target
	p := transientPoint{t: s.Time, tps: s.TPS, n: len(s.AFR)}
	for c := range s.AFR {
		p.err[c] = math.NaN()
		m := measuredAFR(s, c, o.Stoich)
		// Fuel-cut readings (air) are not a mixture.
		if t := then[c]; dyno.Has(m) && dyno.Has(t) && t > 0 && m < fuelCutReading && m < 1.4*t {
			p.err[c] = 100 * (m/t - 1)
			ts.sawAFR = true
		}
	}
	errs := p.err[:p.n]
	// Rate over at least 50 ms.
	rate := math.NaN()
	for k := len(ts.hist) - 1; k >= 0; k-- {
		if dt := s.Time - ts.hist[k].t; dt >= 50*time.Millisecond {
			rate = (s.TPS - ts.hist[k].tps) / dt.Seconds()
			break
		}
	}
	if cur := ts.cur; cur != nil {
		for _, t := range s.AFRCommanded {
			if dyno.Has(t) && t > 0 {
				if !Has(cur.tlo) || t < cur.tlo {
					cur.tlo = t
				}
				if !Has(cur.thi) || t > cur.thi {
					cur.thi = t
				}
			}
		}
		age := s.Time - cur.start
		if age <= 100*time.Millisecond && dyno.Has(rate) {
			cur.peakRate = math.Max(cur.peakRate, rate)
			cur.ev.ToTPS = math.Max(cur.ev.ToTPS, s.TPS)
		}
		for c, e := range errs {
			if c >= len(cur.lo) || !dyno.Has(e) {
				continue
			}
			switch {
			case age >= delay && age <= delay+o.Window:
				if !Has(cur.lo[c]) || e < cur.lo[c] {
					cur.lo[c] = e
				}
				if !Has(cur.hi[c]) || e > cur.hi[c] {
					cur.hi[c] = e
				}
			case age > delay+o.Window && age <= delay+o.Window+transientSettle:
				cur.settle[c] += e
				cur.settled[c]++
			}
		}
		if age > delay+o.Window+transientSettle {
			ts.finish(cur)
			ts.cur = nil
		}
	}
	if ts.cur == nil && dyno.Has(rate) && rate >= o.TPSRate && len(ts.hist) > 0 {
		if !ts.fueled() {
			// Out of a fuel cut: wait the opening out, unjudged.
			ts.res.FromCut++
			ts.cur = &tipIn{start: s.Time, skip: true}
		} else {
			nc := len(errs)
			ti := &tipIn{start: s.Time, peakRate: rate, lo: make([]float64, nc), hi: make([]float64, nc),
				settle: make([]float64, nc), settled: make([]int, nc), tlo: math.NaN(), thi: math.NaN()}
			for c := range nc {
				ti.lo[c], ti.hi[c] = math.NaN(), math.NaN()
			}
			ti.ev = TransientEvent{At: s.Time, RPM: s.RPM, FromTPS: ts.hist[0].tps, ToTPS: s.TPS}
			ts.cur = ti
		}
	}
	ts.hist = append(ts.hist, p)
	for len(ts.hist) > 1 && s.Time-ts.hist[0].t > 300*time.Millisecond {
		ts.hist = ts.hist[1:]
	}
}

// fueled reports whether every point of the last 300 ms read a mixture on
// some cylinder (no fuel cut).
func (ts *TransientScan) fueled() bool {
	for _, p := range ts.hist {
		mixture := false
		for _, e := range p.err[:p.n] {
			mixture = mixture || dyno.Has(e)
		}
		if !mixture {
			return false
		}
	}
	return true
}

// finish judges a tip-in whose window and settling time have passed.
func (ts *TransientScan) finish(ti *tipIn) {
	o, res := &ts.o, ts.res
	if ti.skip {
		return
	}
	if o.Delay.IsZero() && Has(ti.tlo) && ti.thi > ti.tlo*1.02 {
		res.Unjudged++
		return
	}
	var mean float64
	n := 0
	nc := len(ti.lo)
	ti.ev.Baseline, ti.ev.Excursion = make([]float64, nc), make([]float64, nc)
	for c := range nc {
		ti.ev.Baseline[c], ti.ev.Excursion[c] = math.NaN(), math.NaN()
		if ti.settled[c] == 0 || !Has(ti.lo[c]) {
			continue
		}
		base := ti.settle[c] / float64(ti.settled[c])
		exc := ti.hi[c] - base
		if d := ti.lo[c] - base; -d > exc {
			exc = d
		}
		ti.ev.Baseline[c], ti.ev.Excursion[c] = base, exc
		mean += exc
		n++
	}
	if n == 0 {
		return
	}
	for nc > 0 && !Has(ti.ev.Excursion[nc-1]) {
		nc--
	}
	ti.ev.Baseline, ti.ev.Excursion = ti.ev.Baseline[:nc], ti.ev.Excursion[:nc]
	mean /= float64(n)
	ti.ev.TPSRate = ti.peakRate
	ti.ev.Bin = binOf(o.Edges, ti.peakRate)
	b := &ts.counts[ti.ev.Bin]
	b.n++
	b.sum += mean
	switch {
	case mean >= o.ThresholdPct:
		ti.ev.Verdict = "lean"
		b.lean++
	case mean <= -o.ThresholdPct:
		ti.ev.Verdict = "rich"
		b.rich++
	default:
		ti.ev.Verdict = "ok"
	}
	if len(res.Events) < maxTransientEvents {
		res.Events = append(res.Events, ti.ev)
	}
}

// Result judges a tip-in still open at the end and returns the events and
// the bins with their suggestions. Call it once, after the last Add.
func (ts *TransientScan) Result() *TransientResult {
	o, res := &ts.o, ts.res
	if ts.cur != nil {
		ts.finish(ts.cur)
		ts.cur = nil
	}
	switch {
	case !ts.sawTime:
		res.Note = "the log has no time column: tip-in rates cannot be told"
	case !ts.sawTPS:
		res.Note = "the log has no throttle (TPS) channel: tip-ins cannot be found"
	case !ts.sawAFR:
		res.Note = "no wideband with a target: the response to tip-ins cannot be judged"
	}
	res.Bins = res.Bins[:0]
	for i, edge := range o.Edges {
		b := TransientBin{From: edge, To: math.Inf(1)}
		if i+1 < len(o.Edges) {
			b.To = o.Edges[i+1]
		}
		c := ts.counts[i]
		b.Events, b.Lean, b.Rich = c.n, c.lean, c.rich
		if c.n > 0 {
			b.MeanExcursion = c.sum / float64(c.n)
		}
		switch {
		case c.n < o.MinEvents:
			b.Suggestion = fmt.Sprintf("%d tip-ins: too few to judge (want %d)", c.n, o.MinEvents)
		case math.Abs(b.MeanExcursion) < o.ThresholdPct:
			b.Suggestion = fmt.Sprintf("%d tip-ins, %+.1f %% on average: the acceleration enrichment is right", c.n, b.MeanExcursion)
		default:
			b.ChangePct = math.Max(-o.MaxChangePct, math.Min(o.MaxChangePct, b.MeanExcursion))
			more := "more"
			if b.ChangePct < 0 {
				more = "less"
			}
			b.Suggestion = fmt.Sprintf("%d tip-ins ran %+.1f %% on average (%d lean, %d rich): give %s acceleration enrichment at these throttle rates, about %+.0f %%",
				c.n, b.MeanExcursion, c.lean, c.rich, more, b.ChangePct)
		}
		res.Bins = append(res.Bins, b)
	}
	return res
}

// binOf returns the bin of rate among edges' lower bounds.
func binOf(edges []float64, rate float64) int {
	b := 0
	for i, e := range edges {
		if rate >= e {
			b = i
		}
	}
	return b
}

// WriteFiles writes Transient_Fuel.json into dir and returns its name.
func (r *TransientResult) WriteFiles(dir string) ([]string, error) {
	name := "Transient_Fuel.json"
	return []string{name}, writeJSONFile(dir, name, r)
}

// MarshalJSON writes the open-ended last bin's To, and NaN baselines, as null.
func (b TransientBin) MarshalJSON() ([]byte, error) {
	type plain TransientBin
	out := struct {
		plain
		To *float64 `json:"to_rate"`
	}{plain: plain(b)}
	if !math.IsInf(b.To, 0) {
		out.To = &b.To
	}
	return json.Marshal(out)
}

// MarshalJSON writes NaN figures as null.
func (e TransientEvent) MarshalJSON() ([]byte, error) {
	type plain TransientEvent
	null := func(v []float64) []*float64 {
		out := make([]*float64, len(v))
		for i := range v {
			if Has(v[i]) {
				out[i] = &v[i]
			}
		}
		return out
	}
	return json.Marshal(struct {
		plain
		Baseline  []*float64 `json:"baseline_pct"`
		Excursion []*float64 `json:"excursion_pct"`
	}{plain(e), null(e.Baseline), null(e.Excursion)})
}
