package dyno

import (
	"context"
	"io"
	"math"
	"time"
)

// PullOptions tunes pull (wide-open-throttle sweep) detection. The zero
// value is the jetstream-dyno spec's §2.6 recommendation: WOT is TPS ≥ 85 %
// (MAP ≥ 85 kPa when a sample has no TPS), throttle dropouts of up to 0.2 s
// are bridged, an RPM fall lasting more than 0.1 s ends a pull, pulls shorter
// than 2 s or spanning less than 1500 rpm are dropped, and the first 0.5 s
// (the throttle transient) is trimmed.
type PullOptions struct {
	WOTThrottle float64 // TPS at or above which the throttle is wide open, %; 0 means 85
	WOTMAP      float64 // MAP at or above which a sample without TPS is WOT, kPa; 0 means 85
	// IsWOT, when set, replaces the TPS/MAP rule (for logs with neither,
	// for example a dyno-only run: s.Power > 0).
	IsWOT func(s *Sample) bool

	MaxDropout time.Duration // longest throttle dropout bridged; 0 means 200 ms
	MaxRPMFall time.Duration // how long RPM may stay below its peak; 0 means 100 ms
	// RPMNoise is the RPM fall that counts as falling, so that sensor noise
	// does not end a pull; 0 means 50 rpm.
	RPMNoise float64
	// Redline ends a pull when RPM reaches 98 % of it; 0 means no redline.
	Redline float64

	MinDuration time.Duration // shortest pull kept; 0 means 2 s
	MinRPMSpan  float64       // smallest RPM span kept; 0 means 1500
	// Trim is the start of a pull dropped as throttle transient; 0 means
	// 500 ms, a negative value trims nothing.
	Trim time.Duration
	// Period is the sample period assumed when samples carry no time (the
	// source's layout lacks ChanTime); 0 means 10 ms, the predecessor's
	// 100 Hz assumption.
	Period time.Duration
}

func (o PullOptions) withDefaults() PullOptions {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.WOTThrottle, 85)
	def(&o.WOTMAP, 85)
	def(&o.RPMNoise, 50)
	def(&o.MinRPMSpan, 1500)
	defD(&o.MaxDropout, 200*time.Millisecond)
	defD(&o.MaxRPMFall, 100*time.Millisecond)
	defD(&o.MinDuration, 2*time.Second)
	defD(&o.Trim, 500*time.Millisecond)
	defD(&o.Period, 10*time.Millisecond)
	if o.Trim < 0 {
		o.Trim = 0
	}
	return o
}

// Peaks are the highest power and torque of a pull or log and where they
// happened. At ties the first sample wins. A value is Missing when no sample
// had the channel; start from NewPeaks, not the zero value.
type Peaks struct {
	Power      float64       // hp
	PowerRPM   float64       // engine speed at peak power
	PowerTime  time.Duration // time of peak power
	Torque     float64       // ft·lbf
	TorqueRPM  float64
	TorqueTime time.Duration
}

// NewPeaks returns empty Peaks, ready for Add.
func NewPeaks() Peaks {
	return Peaks{Power: Missing, PowerRPM: Missing, Torque: Missing, TorqueRPM: Missing}
}

// Add takes one sample into the peaks.
func (p *Peaks) Add(s *Sample) { p.add(s.Time, s.RPM, s.Power, s.Torque) }

func (p *Peaks) add(t time.Duration, rpm, power, torque float64) {
	if Has(power) && (!Has(p.Power) || power > p.Power) {
		p.Power, p.PowerRPM, p.PowerTime = power, rpm, t
	}
	if Has(torque) && (!Has(p.Torque) || torque > p.Torque) {
		p.Torque, p.TorqueRPM, p.TorqueTime = torque, rpm, t
	}
}

// FindPeaks returns the peaks of samples (jetstream-dyno spec §2.7).
func FindPeaks(samples []Sample) Peaks {
	p := NewPeaks()
	for i := range samples {
		p.Add(&samples[i])
	}
	return p
}

// PullSegment is one wide-open-throttle sweep found in a log.
type PullSegment struct {
	Number     int           // 1..n in time order
	Start, End time.Duration // first and last sample kept (after the trim)
	StartRPM   float64       // RPM at Start
	EndRPM     float64       // RPM at End
	MinRPM     float64
	MaxRPM     float64
	Samples    int // samples between Start and End
	Peaks      Peaks
	// FirstIndex and LastIndex are the 0-based positions in the stream of
	// the first and last sample kept.
	FirstIndex, LastIndex int64
}

// Duration is End − Start.
func (p PullSegment) Duration() time.Duration { return p.End - p.Start }

// PullDetector finds pulls in a stream of samples, one Add at a time. It
// holds 32 bytes per sample of the pull in progress only (a pull lasts
// seconds), never the log.
type PullDetector struct {
	o        PullOptions
	noTime   bool
	index    int64
	prevRPM  float64
	inPull   bool
	pts      []pullPoint
	idx0     int64 // stream index of pts[0]
	lastWOT  int
	peakIdx  int
	fallFrom time.Duration
	falling  bool
	pulls    []PullSegment
}

// pullPoint is what a pull in progress keeps of a sample.
type pullPoint struct {
	Time               time.Duration
	RPM, Power, Torque float64
}

// NewPullDetector returns a detector for samples of the given layout.
func NewPullDetector(layout Layout, opts PullOptions) *PullDetector {
	return &PullDetector{o: opts.withDefaults(), noTime: !layout.Channels.Has(ChanTime), prevRPM: Missing}
}

func (d *PullDetector) wot(s *Sample) bool {
	if d.o.IsWOT != nil {
		return d.o.IsWOT(s)
	}
	if Has(s.TPS) {
		return s.TPS >= d.o.WOTThrottle
	}
	return Has(s.MAP) && s.MAP >= d.o.WOTMAP
}

// Add feeds the next sample.
func (d *PullDetector) Add(s *Sample) {
	wot := d.wot(s)
	cur := pullPoint{Time: s.Time, RPM: s.RPM, Power: s.Power, Torque: s.Torque}
	if d.noTime {
		cur.Time = time.Duration(d.index) * d.o.Period
	}
	d.index++
	prev := d.prevRPM
	if Has(cur.RPM) {
		d.prevRPM = cur.RPM
	}
	if !d.inPull {
		if wot && Has(cur.RPM) && (!Has(prev) || cur.RPM >= prev) {
			d.inPull = true
			d.pts = append(d.pts[:0], cur)
			d.idx0 = d.index - 1
			d.lastWOT, d.peakIdx, d.falling = 0, 0, false
		}
		return
	}
	d.pts = append(d.pts, cur)
	i := len(d.pts) - 1
	if wot {
		d.lastWOT = i
	} else if cur.Time-d.pts[d.lastWOT].Time > d.o.MaxDropout {
		d.finish(d.lastWOT)
		return
	}
	if !Has(cur.RPM) {
		return
	}
	peak := d.pts[d.peakIdx].RPM
	switch {
	case cur.RPM > peak:
		d.peakIdx, d.falling = i, false
	case cur.RPM < peak-d.o.RPMNoise:
		if !d.falling {
			d.falling, d.fallFrom = true, cur.Time
		} else if cur.Time-d.fallFrom > d.o.MaxRPMFall {
			d.finish(d.peakIdx)
			return
		}
	default:
		d.falling = false
	}
	if d.o.Redline > 0 && cur.RPM >= 0.98*d.o.Redline {
		d.finish(i)
	}
}

// finish closes the pull in progress at pts[end], keeping it if it is long
// enough.
func (d *PullDetector) finish(end int) {
	d.inPull = false
	seg := d.pts[:end+1]
	if len(seg) == 0 {
		return
	}
	// Both ends of the throttle dropout rule can leave non-WOT samples at
	// the end: the segment ends at the last WOT sample, which end already is.
	minR, maxR := math.Inf(1), math.Inf(-1)
	for i := range seg {
		if Has(seg[i].RPM) {
			minR, maxR = math.Min(minR, seg[i].RPM), math.Max(maxR, seg[i].RPM)
		}
	}
	if seg[len(seg)-1].Time-seg[0].Time < d.o.MinDuration || !(maxR-minR >= d.o.MinRPMSpan) {
		return
	}
	first := 0
	for first < len(seg)-1 && seg[first].Time-seg[0].Time < d.o.Trim {
		first++
	}
	seg = seg[first:]
	p := PullSegment{
		Number: len(d.pulls) + 1, Start: seg[0].Time, End: seg[len(seg)-1].Time,
		StartRPM: seg[0].RPM, EndRPM: seg[len(seg)-1].RPM, MinRPM: math.Inf(1), MaxRPM: math.Inf(-1),
		Samples: len(seg), Peaks: NewPeaks(),
		FirstIndex: d.idx0 + int64(first), LastIndex: d.idx0 + int64(first+len(seg)-1),
	}
	for i := range seg {
		if Has(seg[i].RPM) {
			p.MinRPM, p.MaxRPM = math.Min(p.MinRPM, seg[i].RPM), math.Max(p.MaxRPM, seg[i].RPM)
		}
		p.Peaks.add(seg[i].Time, seg[i].RPM, seg[i].Power, seg[i].Torque)
	}
	d.pulls = append(d.pulls, p)
}

// Flush ends a pull still in progress at the end of the stream.
func (d *PullDetector) Flush() {
	if d.inPull {
		d.finish(d.lastWOT)
	}
}

// Pulls returns the pulls completed so far.
func (d *PullDetector) Pulls() []PullSegment { return append([]PullSegment(nil), d.pulls...) }

// DetectPulls reads src to its end and returns its pulls (jetstream-dyno
// spec §2.6): each a stretch of wide-open throttle with rising RPM, numbered
// in time order, with its RPM range and power and torque peaks.
func DetectPulls(ctx context.Context, src Source, opts PullOptions) ([]PullSegment, error) {
	d := NewPullDetector(src.Layout(), opts)
	s := NewSample()
	for {
		err := src.Next(ctx, &s)
		if err == io.EOF {
			d.Flush()
			return d.Pulls(), nil
		}
		if err != nil {
			return d.Pulls(), err
		}
		d.Add(&s)
	}
}

// PullSamples returns the samples of p from samples, the slice p was found
// in (by DetectPulls over a SliceSource of it).
func PullSamples(samples []Sample, p PullSegment) []Sample {
	if p.FirstIndex < 0 || p.LastIndex >= int64(len(samples)) || p.FirstIndex > p.LastIndex {
		return nil
	}
	return samples[p.FirstIndex : p.LastIndex+1]
}
