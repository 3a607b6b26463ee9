package tune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynosim"
	"github.com/dynoai/dynoai/ve"
)

// ErrConfig is wrapped by every error about a Config.
var ErrConfig = errors.New("tune: bad config")

// Status is how a session ended.
type Status string

// The statuses of a finished session.
const (
	Converged     Status = "converged"      // max AFR error over covered cells within ConvergedAFR
	Oscillating   Status = "oscillating"    // the error on cells already covered grew by more than OscillationAFR
	MaxIterations Status = "max_iterations" // out of iterations without converging
)

// Rig runs a test on an engine whose ECU holds the given VE tables (front,
// rear) and returns the log. The simulator is one (SimRig); a real dyno
// driven by an operator could be another.
type Rig interface {
	Run(ctx context.Context, ecu [2]*ve.Table, iteration int) (dyno.Source, error)
}

// SimRig runs Config (its ECUVE replaced by the tables of each iteration and
// its Seed advanced by the iteration number, so every pull has fresh noise)
// on a dynosim.Simulator.
type SimRig struct {
	Config dynosim.Config
}

// Run returns a simulator running the rig's plan with ecu.
func (r SimRig) Run(_ context.Context, ecu [2]*ve.Table, iteration int) (dyno.Source, error) {
	cfg := r.Config
	cfg.ECUVE = [2]dyno.Surface{ecu[0], ecu[1]}
	cfg.Seed += uint64(iteration) * 1_000_003
	return dynosim.New(cfg)
}

// Event is a progress report.
type Event struct {
	Iteration int    `json:"iteration"`
	Stage     string `json:"stage"` // "run", "analyze", "apply", "done"
	Message   string `json:"message"`
}

// Config configures a session. Rig, Initial and Targets are required.
type Config struct {
	Rig Rig
	// Initial holds the ECU's VE tables (front, rear) at the start, on one
	// grid, which is also the analysis grid. Their precision must be at
	// most ve.MaxBasePrecision; applied tables are rounded back to it.
	Initial [2]*ve.Table
	// Targets is the ECU's target AFR table, the one target source of the
	// analysis.
	Targets dyno.Surface
	// Analyzer configures the analysis; Grid and Targets are set by the
	// session, SensorDelay too when LearnDelay is set. Zero fields take
	// DefaultAnalyzerOptions' values.
	Analyzer ve.Options
	// Limits bound each apply; zero means DefaultLimits with the initial
	// tables as baselines.
	Limits *ve.Limits
	// LearnDelay estimates the wideband transport delay from the logs
	// (the analyzer's LearnDelay, afr.AutoAlign with AutoAlign's options)
	// until one estimate is
	// confident (AutoAlign.MinConfidence, default 0.3), then keeps it:
	// near convergence the AFR carries little of the cell structure the
	// estimate reads. Otherwise Analyzer.SensorDelay is used as given
	// (zero: no alignment).
	LearnDelay bool
	AutoAlign  afr.AutoAlignOptions
	// MaxIterations; zero means 6.
	MaxIterations int
	// ConvergedAFR is the max |AFR error| over covered cells that counts as
	// converged; zero means 0.1.
	ConvergedAFR float64
	// OscillationAFR: when the max error on the cells the previous
	// iteration covered grows by more than this from one iteration to the
	// next the session stops as Oscillating; zero means 0.1.
	OscillationAFR float64
	// Truth is the engine's true VE per cylinder, in the tables' unit. It
	// is read only to score each iteration (VE error); nil skips that.
	Truth [2]dyno.Surface
	// Progress, when set, receives events synchronously.
	Progress func(Event)
	// Logger; nil discards.
	Logger *slog.Logger
}

// learned is the delay a session has learned and kept, with its confidence
// (zero before).
type learned struct {
	delay dyno.TransportDelay
	conf  float64
}

// DefaultAnalyzerOptions are the analysis settings of a session: a 35 %
// clamp (a −10 % ± 5 % table needs up to about 1.33), at least 10 effective
// samples a cell, and the AFR range and fuel-cut check widened to 20 so
// that a badly lean cell still counts instead of being taken for a fuel cut.
func DefaultAnalyzerOptions() ve.Options {
	f := ve.DefaultFilter()
	f.AFRMax, f.FuelCutAFR = 20, 20
	return ve.Options{Filter: &f, MinSamples: 10, ClampPercent: 35}
}

// DefaultLimits are the authority limits of a session: 35 % a step (one
// correction fixes a cell 25 % off), 50 % from the baseline in total, VE
// rails 10..200.
func DefaultLimits() ve.Limits {
	return ve.Limits{MaxAdjustPercent: 35, MinVE: 10, MaxVE: 200, MaxCumulativePercent: 50}
}

// Iteration is what one iteration measured, before its correction.
type Iteration struct {
	N int `json:"iteration"`
	// AFR error (measured − target, AFR points, as the node estimate of the
	// analysis says: the multiplier − 1 times the target) over covered cells: the
	// cells with evidence (ve.ConfidenceLow or better), both cylinders.
	MaxAFRError  float64 `json:"max_afr_error"`
	MeanAFRError float64 `json:"mean_afr_error"`
	RMSAFRError  float64 `json:"rms_afr_error"`
	// MaxAFRErrorKept is MaxAFRError over the cells the previous iteration
	// covered too: what its corrections were meant to fix. A cell the
	// plan reaches for the first time (its evidence was short of the
	// analyzer's threshold before) carries the table's original error,
	// which is no sign of oscillation. It equals MaxAFRError on the first
	// iteration.
	MaxAFRErrorKept float64 `json:"max_afr_error_kept"`
	// CellsNew counts the covered cells the previous iteration did not
	// cover.
	CellsNew int `json:"cells_new"`
	// VE error of the tables this iteration ran with against Truth, in
	// percent, over the covered cells; NaN without Truth (null in JSON).
	RMSVEErrorPct float64 `json:"rms_ve_error_pct"`
	MaxVEErrorPct float64 `json:"max_ve_error_pct"`
	// CellsCovered counts the covered cells of both cylinders (a cell of
	// the grid counts once per cylinder); CellsCorrected those whose
	// correction exceeds 0.5 %, CellsConverged those whose |AFR error| is
	// within ConvergedAFR.
	CellsCovered   int     `json:"cells_covered"`
	CellsCorrected int     `json:"cells_corrected"`
	CellsConverged int     `json:"cells_converged"`
	PeakHP         float64 `json:"peak_hp"`
	// Delay is the transport delay undone and DelayConfidence the
	// estimate's confidence (0 when the delay was given, not learned).
	Delay           time.Duration `json:"delay_ns"`
	DelayConfidence float64       `json:"delay_confidence"`
	Samples         int           `json:"samples"`
	Elapsed         time.Duration `json:"elapsed_ns"`
}

// FinalScore is the VE error of a session's tables against the truth, in
// percent; NaN without Truth.
type FinalScore struct {
	RMSVEErrorPct float64 `json:"rms_ve_error_pct"`
	MaxVEErrorPct float64 `json:"max_ve_error_pct"`
}

// Report is the outcome of a session.
type Report struct {
	Status     Status      `json:"status"`
	Iterations []Iteration `json:"iterations"`
	// Tables are the ECU's VE tables the session hands back: those of the
	// iteration with the smallest max AFR error (Best), so a session that
	// ends oscillating or out of iterations returns its best tune, not its
	// last correction. Final scores them (VE error over the cells the last
	// iteration covered) when Truth is set.
	Tables [2]*ve.Table `json:"-"`
	Best   int          `json:"best_iteration"`
	Final  FinalScore   `json:"final"`
	// Result is the last analysis (per-cell evidence for the Planner).
	Result *ve.Result `json:"-"`
}

// Session is one closed-loop tuning run. Create it with New; it is not
// safe for concurrent use.
type Session struct {
	cfg  Config
	used bool
}

// New validates cfg and returns a session ready to Run.
func New(cfg Config) (*Session, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	return &Session{cfg: cfg}, nil
}

// Run runs a session to its end: until converged, oscillating or out of
// iterations. It returns the report so far and ctx's error when ctx is
// cancelled. A session runs once.
func (s *Session) Run(ctx context.Context) (*Report, error) {
	if s.used {
		return nil, fmt.Errorf("%w: a session runs once", ErrConfig)
	}
	s.used = true
	return s.cfg.run(ctx)
}

// Run is New(cfg) followed by Run(ctx).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return s.Run(ctx)
}

func (cfg *Config) run(ctx context.Context) (*Report, error) {
	tables := [2]*ve.Table{cfg.Initial[0].Clone(), cfg.Initial[1].Clone()}
	rep := &Report{Status: MaxIterations}
	var covered [2][]bool
	best := tables
	bestErr := math.Inf(1)
	prevMax := math.NaN()
	var lrn learned
	finish := func() {
		rep.Tables = best
		rep.Final.RMSVEErrorPct, rep.Final.MaxVEErrorPct = cfg.veError(best, covered)
	}
	for n := 1; n <= cfg.MaxIterations; n++ {
		it, res, corr, cov, err := cfg.iterate(ctx, n, tables, &lrn, covered)
		if err != nil {
			finish()
			return rep, err
		}
		covered = cov
		rep.Iterations = append(rep.Iterations, it)
		rep.Result = res
		if it.MaxAFRError < bestErr {
			best, bestErr, rep.Best = tables, it.MaxAFRError, n
		}
		cfg.Logger.Info("tune iteration", "n", n, "max_afr_error", it.MaxAFRError, "rms_ve_error_pct", it.RMSVEErrorPct)
		if it.MaxAFRError <= cfg.ConvergedAFR {
			rep.Status = Converged
			break
		}
		if it.MaxAFRErrorKept > prevMax+cfg.OscillationAFR {
			rep.Status = Oscillating
			break
		}
		prevMax = it.MaxAFRError
		if n == cfg.MaxIterations {
			break
		}
		cfg.emit(n, "apply", "applying per-cylinder corrections")
		var next [2]*ve.Table
		for c := range 2 {
			t, err := cfg.apply(tables[c], corr[c], c)
			if err != nil {
				finish()
				return rep, fmt.Errorf("tune: iteration %d, %s: %w", n, ve.CylinderName(c), err)
			}
			next[c] = t
		}
		tables = next
	}
	finish()
	cfg.emit(len(rep.Iterations), "done", string(rep.Status))
	return rep, nil
}

func (cfg *Config) fill() error {
	if cfg.Rig == nil {
		return fmt.Errorf("%w: Rig is nil", ErrConfig)
	}
	if cfg.Targets == nil {
		return fmt.Errorf("%w: Targets is nil: the ECU's target table is the one target source", ErrConfig)
	}
	for c, t := range cfg.Initial {
		if t == nil {
			return fmt.Errorf("%w: Initial[%d] is nil", ErrConfig, c)
		}
		if err := t.Validate(); err != nil {
			return fmt.Errorf("%w: Initial[%d]: %w", ErrConfig, c, err)
		}
		if t.Precision < 0 || t.Precision > ve.MaxBasePrecision {
			return fmt.Errorf("%w: Initial[%d] has precision %d, at most %d", ErrConfig, c, t.Precision, ve.MaxBasePrecision)
		}
	}
	if !cfg.Initial[0].SameAxes(cfg.Initial[1]) {
		return fmt.Errorf("%w: the front and rear tables have different axes", ErrConfig)
	}
	if cfg.MaxIterations == 0 {
		cfg.MaxIterations = 6
	}
	if cfg.MaxIterations < 0 || cfg.MaxIterations > 1000 {
		return fmt.Errorf("%w: MaxIterations %d outside 1..1000", ErrConfig, cfg.MaxIterations)
	}
	if cfg.ConvergedAFR == 0 {
		cfg.ConvergedAFR = 0.1
	}
	if cfg.OscillationAFR == 0 {
		cfg.OscillationAFR = 0.1
	}
	if !(cfg.ConvergedAFR > 0) || !(cfg.OscillationAFR > 0) {
		return fmt.Errorf("%w: ConvergedAFR %v and OscillationAFR %v must be positive", ErrConfig, cfg.ConvergedAFR, cfg.OscillationAFR)
	}
	d := DefaultAnalyzerOptions()
	a := &cfg.Analyzer
	if a.Filter == nil {
		a.Filter = d.Filter
	}
	if a.MinSamples == 0 {
		a.MinSamples = d.MinSamples
	}
	if a.ClampPercent == 0 {
		a.ClampPercent = d.ClampPercent
	}
	a.Grid = ve.Grid{RPM: cfg.Initial[0].RPM, MAP: cfg.Initial[0].MAP}
	a.Targets = cfg.Targets
	if cfg.LearnDelay {
		a.SensorDelay = dyno.TransportDelay{}
	}
	// The session decides per iteration whether the analyzer learns.
	a.NoLearnDelay = true
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func (cfg *Config) emit(n int, stage, msg string) {
	if cfg.Progress != nil {
		cfg.Progress(Event{Iteration: n, Stage: stage, Message: msg})
	}
}

// peakSource tracks the peak power of the samples it passes on.
type peakSource struct {
	dyno.Source
	peak float64
	n    int
}

func (p *peakSource) Next(ctx context.Context, s *dyno.Sample) error {
	if err := p.Source.Next(ctx, s); err != nil {
		return err
	}
	p.n++
	if dyno.Has(s.Power) && s.Power > p.peak {
		p.peak = s.Power
	}
	return nil
}

func (cfg *Config) iterate(ctx context.Context, n int, tables [2]*ve.Table, lrn *learned, before [2][]bool) (Iteration, *ve.Result, [2]*ve.Table, [2][]bool, error) {
	var covered [2][]bool
	var corr [2]*ve.Table
	start := time.Now()
	it := Iteration{N: n, Delay: cfg.Analyzer.SensorDelay.Fixed}
	cfg.emit(n, "run", "running the test plan")
	src, err := cfg.Rig.Run(ctx, tables, n)
	if err != nil {
		return it, nil, corr, covered, fmt.Errorf("tune: iteration %d: rig: %w", n, err)
	}
	ps := &peakSource{Source: src}
	var in dyno.Source = ps
	opts := cfg.Analyzer
	switch {
	case cfg.LearnDelay && lrn.conf > 0:
		opts.SensorDelay = lrn.delay
		it.Delay, it.DelayConfidence = lrn.delay.Fixed, lrn.conf
	case cfg.LearnDelay:
		opts.NoLearnDelay, opts.LearnDelayOptions = false, cfg.AutoAlign
	}
	an, err := ve.New(opts)
	if err != nil {
		return it, nil, corr, covered, fmt.Errorf("%w: analyzer: %w", ErrConfig, err)
	}
	cfg.emit(n, "analyze", "analyzing the log")
	res, err := an.Analyze(ctx, in)
	if err != nil {
		return it, nil, corr, covered, fmt.Errorf("tune: iteration %d: analyze: %w", n, err)
	}
	if len(res.Cylinders) < 2 {
		return it, nil, corr, covered, fmt.Errorf("tune: iteration %d: the log has %d cylinders, want 2", n, len(res.Cylinders))
	}
	if !opts.NoLearnDelay {
		it.Delay = res.Delay.Fixed
		if est := res.DelayEstimate; est != nil {
			it.DelayConfidence = est.Confidence
			if res.Delay == est.Delay && !est.Delay.IsZero() {
				*lrn = learned{est.Delay, est.Confidence}
			}
		}
	}
	it.PeakHP, it.Samples = ps.peak, ps.n
	rows, cols := tables[0].Rows(), tables[0].Cols()
	var sum, sq float64
	var cnt int
	for c := range 2 {
		cr := &res.Cylinders[c]
		covered[c] = make([]bool, rows*cols)
		for i := range rows {
			for j := range cols {
				cell := cr.Cell(i, j)
				if cell.Confidence == ve.ConfidenceNone {
					continue
				}
				// The AFR error the node's own estimate says the table
				// leaves there: what the table can fix (between nodes an
				// interpolated table cannot follow a curved VE exactly).
				e := (cell.Multiplier - 1) * cell.MeanTarget
				if !ve.Has(e) {
					continue
				}
				covered[c][i*cols+j] = true
				cnt++
				a := math.Abs(e)
				it.MaxAFRError = max(it.MaxAFRError, a)
				if before[c] == nil || before[c][i*cols+j] {
					it.MaxAFRErrorKept = max(it.MaxAFRErrorKept, a)
				} else {
					it.CellsNew++
				}
				sum += a
				sq += e * e
				if m := cr.Correction.Get(i, j); math.Abs(m-1) > 0.005 {
					it.CellsCorrected++
				}
				if a <= cfg.ConvergedAFR {
					it.CellsConverged++
				}
			}
		}
	}
	if cnt == 0 {
		return it, res, corr, covered, fmt.Errorf("tune: iteration %d: the test covered no cell of the grid", n)
	}
	it.CellsCovered = cnt
	it.MeanAFRError = sum / float64(cnt)
	it.RMSAFRError = math.Sqrt(sq / float64(cnt))
	it.RMSVEErrorPct, it.MaxVEErrorPct = cfg.veError(tables, covered)
	it.Elapsed = time.Since(start)
	for c := range 2 {
		corr[c] = res.Cylinders[c].Correction
	}
	return it, res, corr, covered, nil
}

// veError scores tables against Truth over each cylinder's covered cells,
// in percent.
func (cfg *Config) veError(tables [2]*ve.Table, covered [2][]bool) (rms, worst float64) {
	if cfg.Truth[0] == nil || cfg.Truth[1] == nil || covered[0] == nil || covered[1] == nil {
		return math.NaN(), math.NaN()
	}
	var sq float64
	n := 0
	for c := range 2 {
		t := tables[c]
		for i, rpm := range t.RPM {
			for j, mp := range t.MAP {
				if !covered[c][i*t.Cols()+j] {
					continue
				}
				tv := cfg.Truth[c].At(rpm, mp)
				e := (t.Get(i, j) - tv) / tv * 100
				sq += e * e
				worst = max(worst, math.Abs(e))
				n++
			}
		}
	}
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	return math.Sqrt(sq / float64(n)), worst
}

// apply applies one cylinder's correction within the limits and rounds the
// result back to the base table's precision, as an ECU stores it.
func (cfg *Config) apply(base, corr *ve.Table, c int) (*ve.Table, error) {
	lim := DefaultLimits()
	if cfg.Limits != nil {
		lim = *cfg.Limits
	}
	if lim.Baseline == nil && lim.MaxCumulativePercent > 0 {
		lim.Baseline = cfg.Initial[c]
	}
	ap, err := ve.Apply(base, corr, ve.ApplyOptions{Limits: lim, Now: func() time.Time { return time.Time{} }})
	if err != nil {
		return nil, err
	}
	out := ap.Table.Clone()
	out.Precision = base.Precision
	for i := range out.Values {
		out.Values[i] = base.Round(out.Values[i])
	}
	return out, nil
}

// MarshalJSON writes the iteration with NaN (no truth to score against) as
// null.
func (it Iteration) MarshalJSON() ([]byte, error) {
	type plain Iteration
	return json.Marshal(struct {
		plain
		RMSVEErrorPct *float64 `json:"rms_ve_error_pct"`
		MaxVEErrorPct *float64 `json:"max_ve_error_pct"`
	}{plain(it), finiteOrNil(it.RMSVEErrorPct), finiteOrNil(it.MaxVEErrorPct)})
}

// MarshalJSON writes the final score with NaN (no truth) as null.
func (f FinalScore) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		RMSVEErrorPct *float64 `json:"rms_ve_error_pct"`
		MaxVEErrorPct *float64 `json:"max_ve_error_pct"`
	}{finiteOrNil(f.RMSVEErrorPct), finiteOrNil(f.MaxVEErrorPct)})
}

func finiteOrNil(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}
