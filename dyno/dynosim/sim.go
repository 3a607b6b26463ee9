package dynosim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/dynoai/dynoai/dyno"
)

// Defaults of Config.
const (
	DefaultDT            = 10 * time.Millisecond
	DefaultThrottleRate  = 200.0 // %/s, the predecessor's (spec §3.2): 0 → 100 % in 0.5 s
	DefaultSettleRate    = 1000.0
	DefaultSettleTime    = 500 * time.Millisecond
	DefaultSweepRate     = 300.0
	DefaultDecelRate     = 500.0 // rev/min/s, the absorber braking the engine in a decel
	DefaultMAPLag        = 40 * time.Millisecond
	simDefaultBaro       = 101.325
	simDefaultIAT        = 25.0
	simDefaultECT        = 90.0
	simPullTimeout       = 60 * time.Second
	simPrePullTPS        = 8.0
	simCutTPS            = 1.0 // a decel step cuts fuel with the throttle at or below it
	simMaxTimeResolution = time.Minute
)

// Defaults of the fuel-cut reading.
const (
	// DefaultFuelCutAFR is what a wideband reads while the ECU cuts fuel
	// (Config.FuelCutAFR): the exhaust is mostly air, and many widebands
	// and loggers report a fixed lean value rather than free air.
	DefaultFuelCutAFR = 18.0
	// DefaultFuelCutNoisePct is the relative noise of that reading, in
	// percent (Config.FuelCutNoisePct): 18 ± 5 % reads 17.1 as often as
	// 18.9, so an "AFR above 18" rule cannot find fuel cut.
	DefaultFuelCutNoisePct = 5.0
)

// ErrConfig is wrapped by every error New returns.
var ErrConfig = errors.New("dynosim: invalid simulator config")

// ConfigError names the Config field that is wrong, for example
// "Plan[3].MAP". errors.Is(err, ErrConfig) holds.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string {
	return "dynosim: simulator config: " + e.Field + ": " + e.Msg
}

// Unwrap returns ErrConfig.
func (e *ConfigError) Unwrap() error { return ErrConfig }

func simErr(field, format string, a ...any) error {
	return &ConfigError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// StepKind is what a Step does.
type StepKind uint8

// The kinds of Step.
const (
	// StepHold holds RPM at a load (MAP or TPS) for Duration: a
	// steady-state cell on a load-control dyno.
	StepHold StepKind = iota
	// StepSweep ramps RPM from RPM to EndRPM at Rate rev/min/s at a held
	// load, the absorber controlling speed.
	StepSweep
	// StepPull opens the throttle to TPS (100 when zero) at RPM and lets
	// the engine accelerate the inertia to EndRPM: a WOT pull.
	StepPull
	// StepDecel closes the throttle at RPM and lets the absorber brake the
	// engine down to EndRPM at Rate: engine braking with fuel cut. While
	// the throttle is closed (at most 1 %) the ECU cuts fuel, the engine
	// makes no torque (it drags friction and pumping losses), and the
	// widebands read Config.FuelCutAFR with its noise once the exhaust
	// reaches them.
	StepDecel
)

// String returns "hold", "sweep", "pull" or "decel".
func (k StepKind) String() string {
	switch k {
	case StepHold:
		return "hold"
	case StepSweep:
		return "sweep"
	case StepPull:
		return "pull"
	case StepDecel:
		return "decel"
	}
	return fmt.Sprintf("StepKind(%d)", uint8(k))
}

// Step is one step of a test plan. Every step first settles: the
// absorber brings the engine to RPM at SettleRate while the throttle moves
// to the step's load, then holds SettleTime so MAP and the wideband catch up.
// Samples are produced throughout; Simulator.Status tells a settling sample
// from a measuring one.
type Step struct {
	Kind StepKind
	// RPM is the hold speed, or where a sweep, pull or decel starts.
	RPM float64
	// EndRPM is where a sweep, pull or decel ends (a sweep may go down, a
	// decel only goes down).
	EndRPM float64
	// MAP is the load target in kPa for holds and sweeps; when zero TPS
	// is the target instead. The throttle is set from the manifold model
	// for the current rpm, so MAP tracks it through a sweep. In a decel
	// MAP, when set, is the least manifold pressure the closed-throttle
	// engine pulls (an idle-air valve or dashpot holding it there, as on
	// many EFI engines); zero leaves the closed-throttle manifold of the
	// model (about 10-25 kPa).
	MAP float64
	// TPS is the throttle in percent when MAP is zero: a sweep at a fixed
	// TPS lets MAP follow the engine. It is a pull's throttle (zero means
	// 100) and must be zero in a decel, whose throttle is closed.
	TPS float64
	// Duration is how long a hold lasts after settling.
	Duration time.Duration
	// Rate is a sweep's or decel's speed in rev/min per second; zero means
	// DefaultSweepRate or DefaultDecelRate.
	Rate float64
}

// HoldStep returns a step holding rpm at mapKPa for d.
func HoldStep(rpm, mapKPa float64, d time.Duration) Step {
	return Step{Kind: StepHold, RPM: rpm, MAP: mapKPa, Duration: d}
}

// HoldTPSStep returns a step holding rpm at throttle tps for d.
func HoldTPSStep(rpm, tps float64, d time.Duration) Step {
	return Step{Kind: StepHold, RPM: rpm, TPS: tps, Duration: d}
}

// SweepStep returns a step sweeping from one rpm to another at mapKPa and rate
// rev/min/s (zero: DefaultSweepRate).
func SweepStep(from, to, mapKPa, rate float64) Step {
	return Step{Kind: StepSweep, RPM: from, EndRPM: to, MAP: mapKPa, Rate: rate}
}

// SweepTPSStep returns a step sweeping from one rpm to another at a fixed
// throttle tps and rate rev/min/s (zero: DefaultSweepRate): a part-throttle
// sweep on a speed-controlled dyno, MAP following the engine.
func SweepTPSStep(from, to, tps, rate float64) Step {
	return Step{Kind: StepSweep, RPM: from, EndRPM: to, TPS: tps, Rate: rate}
}

// DecelStep returns a closed-throttle decel from one rpm down to another at
// rate rev/min/s (zero: DefaultDecelRate), with fuel cut. mapKPa, when not
// zero, is the least manifold pressure during it (see Step.MAP).
func DecelStep(from, to, mapKPa, rate float64) Step {
	return Step{Kind: StepDecel, RPM: from, EndRPM: to, MAP: mapKPa, Rate: rate}
}

// PullStep returns a wide-open-throttle pull from one rpm to another.
func PullStep(from, to float64) Step {
	return Step{Kind: StepPull, RPM: from, EndRPM: to, TPS: 100}
}

// Noise sets the standard deviations of the Gaussian noise on measured
// channels. The zero value is noise-free. The ECU and the physics use the
// true values; only what is logged is noisy. A channel with both an
// absolute and a relative (Pct) deviation gets one Gaussian draw whose
// variance is the sum of both: σ² = abs² + (pct/100 × value)².
type Noise struct {
	AFR       float64 // AFR points, on each wideband
	RPM       float64 // rev/min
	MAP       float64 // kPa
	TPS       float64 // percent
	TorquePct float64 // percent of torque (and of power and drum force)

	// AFRPct, RPMPct and MAPPct are relative deviations in percent of the
	// true value: RPMPct 0.3 is 9 rev/min at 3000 and 15 at 5000. During
	// fuel cut the widebands use Config.FuelCutNoisePct instead of AFRPct.
	AFRPct float64
	RPMPct float64
	MAPPct float64
}

// TypicalNoise returns the noise of a healthy dyno cell: σ 0.05 AFR (the
// predecessor's virtual-ECU value), 5 rpm, 0.5 kPa, 0.2 % TPS and 1 % torque.
func TypicalNoise() Noise { return Noise{AFR: 0.05, RPM: 5, MAP: 0.5, TPS: 0.2, TorquePct: 1} }

// Config configures a Simulator. The zero value simulates a perfectly
// tuned M8-114 with noise-free, instant wideband sensors through
// DefaultPlan.
type Config struct {
	// Name is the Layout's Name; empty means "simulator:" + profile key.
	Name string
	// Profile is the engine; the zero value means M8114().
	Profile EngineProfile
	// Seed seeds the noise (a PCG); the same config and seed give the
	// same samples.
	Seed uint64
	// DT is the fixed integration step and sample interval; zero means
	// DefaultDT (10 ms, 100 samples/s). Allowed: 1 ms to 100 ms.
	DT time.Duration

	// TrueVE is the VE each cylinder (front, rear) really has; nil
	// entries mean DefaultTrueVE. Any unit works (percent or fraction) as
	// long as ECUVE uses the same: the simulator uses only ratios.
	TrueVE [2]dyno.Surface
	// ECUVE is the VE the ECU believes per cylinder; nil entries mean the
	// true VE (a perfect tune).
	ECUVE [2]dyno.Surface
	// TargetAFR is the ECU's target AFR table (afr.Targets satisfies
	// Surface); nil means VirtualECUTargets.
	TargetAFR dyno.Surface
	// Spark is the ECU's spark table per cylinder (degrees BTDC); nil
	// entries mean DefaultSpark.
	Spark [2]dyno.Surface
	// Knock is the knock retard per cylinder (degrees); nil entries mean
	// none. Knock is subtracted from Spark and costs 1 % torque a degree.
	Knock [2]dyno.Surface

	// Delay is the wideband transport delay; the zero value is none.
	Delay dyno.TransportDelay
	// SensorLag is the widebands' first-order time constant; zero means
	// an instant sensor.
	SensorLag time.Duration
	// Noise on the measured channels; the zero value is none.
	Noise Noise

	// FuelCutAFR is what the widebands read while a decel step cuts fuel
	// (through the transport delay and sensor lag like any reading); zero
	// means DefaultFuelCutAFR. Allowed: 10 to 30.
	FuelCutAFR float64
	// FuelCutNoisePct is the relative noise (percent, σ) of the widebands
	// during fuel cut, on top of Noise.AFR; zero means
	// DefaultFuelCutNoisePct, negative means none. Only decel steps cut
	// fuel, so it changes nothing in a plan without one.
	FuelCutNoisePct float64
	// DecelFuel, when positive, keeps the ECU fueling through decel steps
	// instead of cutting fuel: at this fraction of what the target needs,
	// so 0.88 burns 1/0.88 = 13.6 % lean on closed throttle, the lean decel
	// that pops in the exhaust. Zero means fuel cut. Allowed: 0 or 0.5-1.5.
	DecelFuel float64
	// TipInLeanPct, when positive, leaves the ECU's acceleration
	// enrichment short: while MAP rises the cylinders burn leaner, by this
	// percent at a rise of 100 kPa/s or faster (in proportion below), the
	// excess decaying with a 0.3 s time constant (fuel wetting the port
	// walls). Zero means perfect transient fueling. Allowed: 0 to 50.
	TipInLeanPct float64

	// TimeResolution, when positive, floors every Sample.Time to a
	// multiple of it: 1 s gives the integer-second time column of cheap
	// loggers, many rows sharing one stamp. The physics still runs at DT.
	// Zero means exact times. Allowed: up to one minute.
	TimeResolution time.Duration

	// BaroKPa is the barometric pressure; zero means 101.325.
	BaroKPa float64
	// IATC and ECTC are the intake-air and coolant temperatures (°C),
	// held constant; zero means 25 and 90.
	IATC, ECTC float64

	// ThrottleRate limits throttle movement in %/s; zero means
	// DefaultThrottleRate.
	ThrottleRate float64
	// MAPLag is the manifold's filling time constant; zero means
	// DefaultMAPLag.
	MAPLag time.Duration
	// SettleRate (rev/min/s) and SettleTime shape the transition into
	// each step; zero means DefaultSettleRate and DefaultSettleTime.
	SettleRate float64
	SettleTime time.Duration

	// Plan is the test plan; nil means DefaultPlan(Profile).
	Plan []Step
}

// DefaultPlan returns a plan covering a Harley grid in about three
// simulated minutes: a WOT pull from 1500 rpm to the lesser of 6500 and the
// redline, part-throttle sweeps at 30, 40, … 90 kPa over the same range
// (alternately up and down, 300 rpm/s), and a second WOT pull.
func DefaultPlan(p EngineProfile) []Step {
	if p == (EngineProfile{}) {
		p = M8114()
	}
	lo := max(1500, p.IdleRPM+300)
	hi := min(6500, p.RedlineRPM)
	plan := []Step{PullStep(lo, hi)}
	up := true
	for m := 30.0; m <= 90; m += 10 {
		if up {
			plan = append(plan, SweepStep(lo, hi, m, DefaultSweepRate))
		} else {
			plan = append(plan, SweepStep(hi, lo, m, DefaultSweepRate))
		}
		up = !up
	}
	return append(plan, PullStep(lo, hi))
}

// GridPlan returns holds at every rpm × mapKPa cell for d each, in a
// serpentine order (MAP up at the first rpm, down at the next) so the
// transitions stay short.
func GridPlan(rpm, mapKPa []float64, d time.Duration) []Step {
	plan := make([]Step, 0, len(rpm)*len(mapKPa))
	for i, r := range rpm {
		for k := range mapKPa {
			j := k
			if i%2 == 1 {
				j = len(mapKPa) - 1 - k
			}
			plan = append(plan, HoldStep(r, mapKPa[j], d))
		}
	}
	return plan
}

// Status describes the sample a Simulator produced last.
type Status struct {
	// Step is the index of the plan step, Kind its kind.
	Step int
	Kind StepKind
	// Settling is true while the step moves to its start.
	Settling bool
	// FuelCut is true while the ECU cuts fuel (a decel step with the
	// throttle closed): the engine burns nothing and the widebands will
	// read Config.FuelCutAFR once this exhaust reaches them.
	FuelCut bool
	// Transient is true while the throttle moves at its rate limit or the
	// manifold is more than 1 kPa (or 2 %) away from its steady-state
	// pressure: the engine is not in a steady state even when the step is
	// past settling (the throttle opening at the start of a pull, say).
	Transient bool
	// RPM, MAP and TPS are the true (noise-free) engine state.
	RPM, MAP, TPS float64
	// Torque is the true engine torque, ft·lbf.
	Torque float64
	// ProducedAFR is the mixture each cylinder burned at this instant,
	// before the wideband's delay, lag and noise (Config.FuelCutAFR during
	// fuel cut).
	ProducedAFR [2]float64
}

type simPhase uint8

const (
	phaseSettle simPhase = iota
	phaseDwell
	phaseRun
)

// Simulator is a virtual V-twin on a dyno, a Source of samples. It is
// deterministic: a config and seed give the same samples, bit for bit. Not
// safe for concurrent use.
//
// Physics: engine torque is the air each cylinder breathes (its true VE ×
// MAP, corrected to the intake temperature) times a combustion efficiency
// that peaks at lambda 0.87, less friction and pumping losses, calibrated so
// the profile's MaxTorque comes at TorquePeakRPM on a perfect WOT tune. The
// ECU meters fuel for its target AFR from its own VE, so each cylinder burns
// exactly target × trueVE / ecuVE (evaluated at the true rpm and MAP). The
// wideband sees that mixture through the transport delay, then a first-order
// lag, then noise. In a decel step with the throttle closed the ECU cuts
// fuel: the engine drags (friction and pumping, negative torque) and the
// widebands read Config.FuelCutAFR, with its own relative noise, once that
// exhaust reaches them. During a pull the inertia integrates the torque
// (explicit Euler at DT); otherwise an ideal absorber sets the speed. IAT,
// ECT and baro are held constant (no thermal model). Sample.Time is exact
// unless Config.TimeResolution coarsens it.
//
// Where it departs from the predecessor's simulator (jetstream-dyno spec
// §3.8, §3.10-3.11): the inertia is the profile's, explicit, so pulls take
// seconds, not minutes; the ECU reads the same-step true MAP, not the
// previous step's noisy one; measured AFR is not clamped to [10, 20] or
// [8, 20], so a badly wrong table shows its true error; the one target AFR
// is the ECU's table (logged as AFRCommanded), not a profile target mixed
// with two others; the true VE is a Surface the caller can read (TrueVE)
// and compare with what the analysis recovers; front and rear are
// independent; per-step state (Status) works instead of crashing; and
// randomness is a seeded PCG, reproducible across runs and machines.
type Simulator struct {
	cfg    Config
	prof   EngineProfile
	plan   []Step
	trueVE [2]dyno.Surface
	ecuVE  [2]dyno.Surface
	target dyno.Surface
	spark  [2]dyno.Surface
	knock  [2]dyno.Surface
	rng    *rand.Rand
	layout dyno.Layout

	dt, baro, iatFactor float64
	k                   float64 // torque per unit VE·kPa
	throttleStep        float64 // max TPS change per step
	mapAlpha, lagAlpha  float64
	cutAFR, cutNoise    float64 // fuel-cut reading and its relative σ (fraction)

	// state
	n            int
	rpm, tps     float64
	mapKPa       float64
	step         int
	phase        simPhase
	phaseTime    time.Duration
	runTime      time.Duration
	done         bool
	produced     [2][]float64 // ring of produced AFR, newest at hist
	cutHist      []float64    // ring of fuel cut (0 or 1), beside produced; nil without decels
	hist, filled int
	sensor       [2]float64
	cutSensor    float64 // the share of fuel-cut exhaust the widebands see
	sensorInit   bool
	cut          bool    // the ECU cuts fuel now
	decelFueled  bool    // closed throttle in a decel with Config.DecelFuel: fueled lean
	wet          float64 // the lean fraction a short acceleration enrichment leaves (Config.TipInLeanPct)
	transient    bool    // the throttle slews or the manifold lags
	status       Status
}

// New validates cfg and returns a simulator at the start of its
// plan, the engine idling.
func New(cfg Config) (*Simulator, error) {
	s := &Simulator{}
	if err := s.init(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func (s *Simulator) init(cfg Config) error {
	if cfg.Profile == (EngineProfile{}) {
		cfg.Profile = M8114()
	}
	if err := cfg.Profile.Validate(); err != nil {
		return simErr("Profile", "%v", err)
	}
	p := cfg.Profile
	if cfg.DT == 0 {
		cfg.DT = DefaultDT
	}
	if cfg.DT < time.Millisecond || cfg.DT > 100*time.Millisecond {
		return simErr("DT", "%v is outside 1ms..100ms", cfg.DT)
	}
	if cfg.BaroKPa == 0 {
		cfg.BaroKPa = simDefaultBaro
	}
	if !finite(cfg.BaroKPa) || cfg.BaroKPa < 50 || cfg.BaroKPa > 110 {
		return simErr("BaroKPa", "%v is outside 50..110 kPa", cfg.BaroKPa)
	}
	if cfg.IATC == 0 {
		cfg.IATC = simDefaultIAT
	}
	if !finite(cfg.IATC) || cfg.IATC < -40 || cfg.IATC > 90 {
		return simErr("IATC", "%v is outside -40..90 °C", cfg.IATC)
	}
	if cfg.ECTC == 0 {
		cfg.ECTC = simDefaultECT
	}
	if !finite(cfg.ECTC) || cfg.ECTC < -40 || cfg.ECTC > 150 {
		return simErr("ECTC", "%v is outside -40..150 °C", cfg.ECTC)
	}
	for _, f := range []struct {
		name string
		v    *float64
		def  float64
	}{
		{"ThrottleRate", &cfg.ThrottleRate, DefaultThrottleRate},
		{"SettleRate", &cfg.SettleRate, DefaultSettleRate},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
		if !finite(*f.v) || *f.v < 0 {
			return simErr(f.name, "%v must be a positive number", *f.v)
		}
	}
	if cfg.MAPLag == 0 {
		cfg.MAPLag = DefaultMAPLag
	}
	if cfg.SettleTime == 0 {
		cfg.SettleTime = DefaultSettleTime
	}
	switch {
	case cfg.MAPLag < 0:
		return simErr("MAPLag", "%v is negative", cfg.MAPLag)
	case cfg.SettleTime < 0:
		return simErr("SettleTime", "%v is negative", cfg.SettleTime)
	case cfg.SensorLag < 0 || cfg.SensorLag > 10*time.Second:
		return simErr("SensorLag", "%v is outside 0..10s", cfg.SensorLag)
	}
	if err := cfg.Delay.Validate(); err != nil {
		return simErr("Delay", "%v", err)
	}
	n := cfg.Noise
	for _, f := range []struct {
		name string
		v    float64
	}{{"AFR", n.AFR}, {"RPM", n.RPM}, {"MAP", n.MAP}, {"TPS", n.TPS}, {"TorquePct", n.TorquePct},
		{"AFRPct", n.AFRPct}, {"RPMPct", n.RPMPct}, {"MAPPct", n.MAPPct}} {
		if !finite(f.v) || f.v < 0 {
			return simErr("Noise."+f.name, "%v must be a finite number >= 0", f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"AFRPct", n.AFRPct}, {"RPMPct", n.RPMPct}, {"MAPPct", n.MAPPct}} {
		if f.v > 50 {
			return simErr("Noise."+f.name, "%v%% is more than 50%%", f.v)
		}
	}
	if cfg.FuelCutAFR == 0 {
		cfg.FuelCutAFR = DefaultFuelCutAFR
	}
	if !finite(cfg.TipInLeanPct) || cfg.TipInLeanPct < 0 || cfg.TipInLeanPct > 50 {
		return simErr("TipInLeanPct", "%v; want 0 to 50", cfg.TipInLeanPct)
	}
	if !finite(cfg.DecelFuel) || cfg.DecelFuel != 0 && (cfg.DecelFuel < 0.5 || cfg.DecelFuel > 1.5) {
		return simErr("DecelFuel", "%v; want 0 (fuel cut) or 0.5 to 1.5", cfg.DecelFuel)
	}
	if !finite(cfg.FuelCutAFR) || cfg.FuelCutAFR < 10 || cfg.FuelCutAFR > 30 {
		return simErr("FuelCutAFR", "%v is outside 10..30", cfg.FuelCutAFR)
	}
	cutNoise := cfg.FuelCutNoisePct
	switch {
	case cutNoise == 0:
		cutNoise = DefaultFuelCutNoisePct
	case cutNoise < 0:
		cutNoise = 0
	}
	if !finite(cutNoise) || cutNoise > 50 {
		return simErr("FuelCutNoisePct", "%v is not a percentage up to 50", cfg.FuelCutNoisePct)
	}
	if cfg.TimeResolution < 0 || cfg.TimeResolution > simMaxTimeResolution {
		return simErr("TimeResolution", "%v is outside 0..%v", cfg.TimeResolution, simMaxTimeResolution)
	}

	def := DefaultTrueVE(p, cfg.BaroKPa)
	spark := DefaultSpark()
	for c := range 2 {
		if cfg.TrueVE[c] == nil {
			cfg.TrueVE[c] = def[c]
		}
		if cfg.ECUVE[c] == nil {
			cfg.ECUVE[c] = cfg.TrueVE[c]
		}
		if cfg.Spark[c] == nil {
			cfg.Spark[c] = spark[c]
		}
	}
	if cfg.TargetAFR == nil {
		cfg.TargetAFR = VirtualECUTargets()
	}
	if err := checkSurfaces(&cfg); err != nil {
		return err
	}
	if cfg.Plan == nil {
		cfg.Plan = DefaultPlan(p)
	}
	if len(cfg.Plan) == 0 {
		return simErr("Plan", "is empty")
	}
	for i, st := range cfg.Plan {
		if err := checkStep(p, cfg.BaroKPa, st); err != nil {
			var se *ConfigError
			if errors.As(err, &se) {
				se.Field = fmt.Sprintf("Plan[%d].%s", i, se.Field)
			}
			return err
		}
	}

	*s = Simulator{
		cfg: cfg, prof: p, plan: cfg.Plan,
		trueVE: cfg.TrueVE, ecuVE: cfg.ECUVE, target: cfg.TargetAFR, spark: cfg.Spark, knock: cfg.Knock,
		rng:    rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d)),
		dt:     cfg.DT.Seconds(),
		baro:   cfg.BaroKPa,
		cutAFR: cfg.FuelCutAFR, cutNoise: cutNoise / 100,
	}
	name := cfg.Name
	if name == "" {
		name = "simulator:" + p.Key
	}
	var all dyno.ChannelSet
	for _, c := range dyno.Channels() {
		if c != dyno.ChanLoad { // the virtual ECU's load is its MAP
			all = all.With(c)
		}
	}
	s.layout = dyno.Layout{Name: name, Format: "simulator", Cylinders: 2, Channels: all}
	s.iatFactor = simRefIATK / (cfg.IATC + 273.15)
	s.throttleStep = cfg.ThrottleRate * s.dt
	s.mapAlpha = alpha(cfg.DT, cfg.MAPLag)
	s.lagAlpha = alpha(cfg.DT, cfg.SensorLag)

	// Calibrate torque: MaxTorque at the torque peak, WOT, best-power
	// mixture, 25 °C, with the configured true VE.
	r := p.TorquePeakRPM
	wot := manifoldPressure(s.baro, r, 100)
	ve := (cfg.TrueVE[0].At(r, wot) + cfg.TrueVE[1].At(r, wot)) / 2
	s.k = (p.MaxTorque + friction(r) + pumpingLoss(s.baro, wot)) / (ve * wot)

	hist := int(math.Ceil(cfg.Delay.Bound().Seconds()/s.dt)) + 2
	for c := range s.produced {
		s.produced[c] = make([]float64, hist)
	}
	if slices.ContainsFunc(cfg.Plan, func(st Step) bool { return st.Kind == StepDecel }) {
		s.cutHist = make([]float64, hist) // only decels cut fuel
	}
	s.rpm = p.IdleRPM
	s.tps = throttleFor(s.baro, s.rpm, 35)
	s.mapKPa = manifoldPressure(s.baro, s.rpm, s.tps)
	return nil
}

// alpha is the first-order filter weight per step for time constant tau.
func alpha(dt, tau time.Duration) float64 {
	if tau <= 0 {
		return 1
	}
	return 1 - math.Exp(-dt.Seconds()/tau.Seconds())
}

// checkSurfaces samples the surfaces over the engine's range: VE must be
// finite and positive, the ECU's within a factor 3 of the truth (else the
// units differ), targets and spark finite.
func checkSurfaces(cfg *Config) error {
	p := cfg.Profile
	names := [2]string{"front", "rear"}
	for i := 0; i <= 6; i++ {
		r := p.IdleRPM + (p.RedlineRPM-p.IdleRPM)*float64(i)/6
		for _, m := range []float64{20, 40, 60, 80, 100} {
			for c := range 2 {
				tv, ev := cfg.TrueVE[c].At(r, m), cfg.ECUVE[c].At(r, m)
				if !finite(tv) || tv <= 0 {
					return simErr("TrueVE["+names[c]+"]", "%v at %v rpm, %v kPa; want a positive number", tv, r, m)
				}
				if !finite(ev) || ev <= 0 {
					return simErr("ECUVE["+names[c]+"]", "%v at %v rpm, %v kPa; want a positive number", ev, r, m)
				}
				if q := tv / ev; q < 1.0/3 || q > 3 {
					return simErr("ECUVE["+names[c]+"]", "%v at %v rpm, %v kPa against a true VE of %v: off by more than 3x (percent against fraction?)", ev, r, m, tv)
				}
				if v := cfg.Spark[c].At(r, m); !finite(v) {
					return simErr("Spark["+names[c]+"]", "%v at %v rpm, %v kPa", v, r, m)
				}
				if cfg.Knock[c] != nil {
					if v := cfg.Knock[c].At(r, m); !finite(v) || v < 0 {
						return simErr("Knock["+names[c]+"]", "%v at %v rpm, %v kPa; want degrees >= 0", v, r, m)
					}
				}
			}
			if v := cfg.TargetAFR.At(r, m); !finite(v) || v < 6 || v > 20 {
				return simErr("TargetAFR", "%v at %v rpm, %v kPa is outside 6..20", v, r, m)
			}
		}
	}
	return nil
}

func checkStep(p EngineProfile, baro float64, st Step) error {
	lo, hi := 0.5*p.IdleRPM, p.RedlineRPM
	inRange := func(field string, v float64) error {
		if !finite(v) || v < lo || v > hi {
			return simErr(field, "%v is outside %v..%v rpm", v, lo, hi)
		}
		return nil
	}
	if err := inRange("RPM", st.RPM); err != nil {
		return err
	}
	if st.Kind != StepHold {
		if err := inRange("EndRPM", st.EndRPM); err != nil {
			return err
		}
	}
	if !finite(st.TPS) || st.TPS < 0 || st.TPS > 100 {
		return simErr("TPS", "%v is outside 0..100", st.TPS)
	}
	if !finite(st.MAP) || st.MAP < 0 {
		return simErr("MAP", "%v is not a pressure", st.MAP)
	}
	if st.Kind == StepDecel {
		if st.MAP >= baro {
			return simErr("MAP", "%v kPa is not below the barometric %v kPa: a closed throttle pulls a vacuum", st.MAP, baro)
		}
		if st.TPS != 0 {
			return simErr("TPS", "%v: a decel closes the throttle; leave TPS zero", st.TPS)
		}
	}
	if st.MAP != 0 && st.Kind != StepPull && st.Kind != StepDecel {
		ends := []float64{st.RPM}
		if st.Kind == StepSweep {
			ends = append(ends, st.EndRPM)
		}
		for _, r := range ends {
			lo, hi := manifoldPressure(baro, r, 0), manifoldPressure(baro, r, 100)
			if st.MAP < lo || st.MAP > hi {
				return simErr("MAP", "%v kPa cannot be reached at %v rpm (%.1f..%.1f kPa)", st.MAP, r, lo, hi)
			}
		}
	}
	switch st.Kind {
	case StepHold:
		if st.Duration < 0 {
			return simErr("Duration", "%v is negative", st.Duration)
		}
	case StepSweep:
		if !finite(st.Rate) || st.Rate < 0 {
			return simErr("Rate", "%v must be >= 0", st.Rate)
		}
		if st.EndRPM == st.RPM {
			return simErr("EndRPM", "equals RPM %v: use a hold", st.RPM)
		}
	case StepPull:
		if st.EndRPM <= st.RPM {
			return simErr("EndRPM", "%v is not above RPM %v", st.EndRPM, st.RPM)
		}
	case StepDecel:
		if !finite(st.Rate) || st.Rate < 0 {
			return simErr("Rate", "%v must be >= 0", st.Rate)
		}
		if st.EndRPM >= st.RPM {
			return simErr("EndRPM", "%v is not below RPM %v", st.EndRPM, st.RPM)
		}
	default:
		return simErr("Kind", "unknown %v", st.Kind)
	}
	return nil
}

// Layout returns the simulator's layout: Format "simulator", 2 cylinders,
// every channel.
func (s *Simulator) Layout() dyno.Layout { return s.layout }

// Profile returns the engine profile.
func (s *Simulator) Profile() EngineProfile { return s.prof }

// DT returns the integration step, which is also the sample interval.
func (s *Simulator) DT() time.Duration { return s.cfg.DT }

// Plan returns a copy of the plan being run.
func (s *Simulator) Plan() []Step { return append([]Step(nil), s.plan...) }

// TrueVE returns the VE cylinder cyl (Front or Rear) really has.
func (s *Simulator) TrueVE(cyl int) dyno.Surface { return s.trueVE[cyl] }

// ECUVE returns the VE the ECU uses for cylinder cyl.
func (s *Simulator) ECUVE(cyl int) dyno.Surface { return s.ecuVE[cyl] }

// TargetAFR returns the ECU's target AFR table.
func (s *Simulator) TargetAFR() dyno.Surface { return s.target }

// Status returns the state behind the last sample Next produced.
func (s *Simulator) Status() Status { return s.status }

// Next advances the simulation by one step and fills dst; it returns io.EOF
// after the last step of the plan, and ctx's error when ctx is done. It
// allocates nothing.
func (s *Simulator) Next(ctx context.Context, dst *dyno.Sample) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.done {
		return io.EOF
	}
	if s.n > 0 {
		s.control()
		if s.done {
			return io.EOF
		}
	} else {
		s.status.Settling = true
		s.status.Kind = s.plan[0].Kind
	}
	s.sample(dst)
	s.n++
	return nil
}

// loadTPS returns the throttle target of a step at the current rpm.
func (s *Simulator) loadTPS(st *Step) float64 {
	switch st.Kind {
	case StepPull:
		if st.TPS == 0 {
			return 100
		}
		return st.TPS
	case StepDecel:
		return 0
	}
	if st.MAP > 0 {
		return throttleFor(s.baro, s.rpm, st.MAP)
	}
	return st.TPS
}

// control advances the state machine and the physics by one DT.
func (s *Simulator) control() {
	dt := s.cfg.DT
	for {
		st := &s.plan[s.step]
		switch s.phase {
		case phaseSettle:
			tgt := s.loadTPS(st)
			if st.Kind == StepPull {
				tgt = simPrePullTPS
			}
			s.moveRPM(st.RPM, s.cfg.SettleRate)
			s.physics(st, tgt, false)
			if s.rpm == st.RPM {
				s.phase, s.phaseTime = phaseDwell, 0
			}
			s.setStatus(st, true)
			return
		case phaseDwell:
			if s.phaseTime >= s.cfg.SettleTime {
				s.phase, s.runTime = phaseRun, 0
				continue
			}
			tgt := s.loadTPS(st)
			if st.Kind == StepPull {
				tgt = simPrePullTPS
			}
			s.physics(st, tgt, false)
			s.phaseTime += dt
			s.setStatus(st, true)
			return
		case phaseRun:
			if s.stepDone(st) {
				s.step++
				s.phase, s.phaseTime = phaseSettle, 0
				if s.step == len(s.plan) {
					s.done = true
					return
				}
				continue
			}
			switch st.Kind {
			case StepHold:
				s.physics(st, s.loadTPS(st), false)
			case StepSweep, StepDecel:
				rate := st.Rate
				if rate == 0 {
					rate = DefaultSweepRate
					if st.Kind == StepDecel {
						rate = DefaultDecelRate
					}
				}
				s.moveRPM(st.EndRPM, rate)
				s.physics(st, s.loadTPS(st), false)
			case StepPull:
				s.physics(st, s.loadTPS(st), true)
				s.rpm = min(s.rpm, st.EndRPM)
			}
			s.runTime += dt
			s.setStatus(st, false)
			return
		}
	}
}

func (s *Simulator) stepDone(st *Step) bool {
	switch st.Kind {
	case StepHold:
		return s.runTime >= st.Duration
	case StepSweep, StepDecel:
		return s.runTime > 0 && s.rpm == st.EndRPM
	default:
		return s.rpm >= st.EndRPM || s.runTime >= simPullTimeout
	}
}

// moveRPM moves the engine speed toward target by at most rate·dt.
func (s *Simulator) moveRPM(target, rate float64) {
	d := rate * s.dt
	switch {
	case s.rpm < target-d:
		s.rpm += d
	case s.rpm > target+d:
		s.rpm -= d
	default:
		s.rpm = target
	}
}

// physics moves throttle and manifold one step toward tpsTarget and, when
// inertia is set, integrates the engine speed with the torque. It decides
// whether the ECU cuts fuel (st is a decel and the throttle is closed) and
// whether the engine is in a transient.
func (s *Simulator) physics(st *Step, tpsTarget float64, inertia bool) {
	slewing := false
	switch d := tpsTarget - s.tps; {
	case d > s.throttleStep:
		s.tps += s.throttleStep
		slewing = true
	case d < -s.throttleStep:
		s.tps -= s.throttleStep
		slewing = true
	default:
		s.tps = tpsTarget
	}
	steady := manifoldPressure(s.baro, s.rpm, s.tps)
	if st.Kind == StepDecel {
		steady = max(steady, st.MAP)
	}
	before := s.mapKPa
	s.mapKPa += (steady - s.mapKPa) * s.mapAlpha
	if s.cfg.TipInLeanPct > 0 {
		// Short acceleration enrichment: leaner in proportion to the rise.
		rise := (s.mapKPa - before) / s.dt
		now := s.cfg.TipInLeanPct / 100 * min(max(rise, 0)/100, 1)
		s.wet = max(s.wet*math.Exp(-s.dt/0.3), now)
	}
	closed := st.Kind == StepDecel && s.tps <= simCutTPS
	s.cut = closed && s.cfg.DecelFuel == 0
	s.decelFueled = closed && s.cfg.DecelFuel > 0
	s.transient = slewing || math.Abs(s.mapKPa-steady) > max(1, 0.02*steady)
	if inertia {
		tq := s.eval(s.rpm, s.mapKPa, s.cut).torque
		// ft·lbf / slug·ft² = rad/s²; rpm = ω·60/2π.
		s.rpm += tq / s.prof.Inertia * s.dt * 60 / (2 * math.Pi)
		s.rpm = min(max(s.rpm, 0.5*s.prof.IdleRPM), s.prof.RedlineRPM)
	}
}

// engineState is the engine at one rpm and MAP: every surface evaluated
// once.
type engineState struct {
	target   float64
	produced [2]float64 // the AFR each cylinder burns: target × trueVE / ecuVE
	knock    [2]float64
	torque   float64 // brake torque, ft·lbf
}

// eval evaluates the engine at rpm and mapKPa; with cut the ECU cuts fuel:
// the cylinders pump air (the fuel-cut reading) and make no torque.
func (s *Simulator) eval(rpm, mapKPa float64, cut bool) engineState {
	e := engineState{target: s.target.At(rpm, mapKPa)}
	if cut {
		e.produced = [2]float64{s.cutAFR, s.cutAFR}
		e.torque = -friction(rpm) - pumpingLoss(s.baro, mapKPa)
		return e
	}
	var ind float64
	for c := range 2 {
		tv := s.trueVE[c].At(rpm, mapKPa)
		e.produced[c] = e.target * tv / s.ecuVE[c].At(rpm, mapKPa)
		if s.decelFueled {
			e.produced[c] /= s.cfg.DecelFuel
		}
		e.produced[c] *= 1 + s.wet
		if s.knock[c] != nil {
			e.knock[c] = max(s.knock[c].At(rpm, mapKPa), 0)
		}
		eff := lambdaEfficiency(e.produced[c]/simStoich) * max(1-simKnockPerDeg*e.knock[c], 0)
		ind += 0.5 * s.k * tv * mapKPa * s.iatFactor * eff
	}
	e.torque = ind - friction(rpm) - pumpingLoss(s.baro, mapKPa)
	return e
}

func (s *Simulator) setStatus(st *Step, settling bool) {
	s.status.Step, s.status.Kind, s.status.Settling = s.step, st.Kind, settling
}

func (s *Simulator) noise(sigma float64) float64 {
	if sigma == 0 {
		return 0
	}
	return sigma * s.rng.NormFloat64()
}

// noiseRel returns Gaussian noise of σ² = abs² + (pct/100 × v)²; with pct
// zero it is noise(abs), draw for draw.
func (s *Simulator) noiseRel(abs, pct, v float64) float64 {
	if pct == 0 {
		return s.noise(abs)
	}
	return s.noise(math.Hypot(abs, pct/100*v))
}

// sample fills dst from the current state and advances the sensors.
func (s *Simulator) sample(dst *dyno.Sample) {
	rpm, mp := s.rpm, s.mapKPa
	e := s.eval(rpm, mp, s.cut)
	tq := e.torque

	// Wideband: push the produced mixture, read it back delayed, lag it.
	// The fuel-cut flag travels with the gas, so the widebands' fuel-cut
	// noise starts and ends with the fuel-cut reading.
	s.hist = (s.hist + 1) % len(s.produced[0])
	s.filled = min(s.filled+1, len(s.produced[0]))
	var prod, meas [2]float64
	pos := s.cfg.Delay.At(rpm).Seconds() / s.dt
	for c := range 2 {
		prod[c] = e.produced[c]
		s.produced[c][s.hist] = prod[c]
		raw := s.delayed(s.produced[c], pos)
		if !s.sensorInit {
			s.sensor[c] = raw
		} else {
			s.sensor[c] += (raw - s.sensor[c]) * s.lagAlpha
		}
		meas[c] = s.sensor[c]
	}
	if s.cutHist != nil {
		cutNow := 0.0
		if s.cut {
			cutNow = 1
		}
		s.cutHist[s.hist] = cutNow
		if raw := s.delayed(s.cutHist, pos); !s.sensorInit {
			s.cutSensor = raw
		} else {
			s.cutSensor += (raw - s.cutSensor) * s.lagAlpha
		}
	}
	s.sensorInit = true

	n := &s.cfg.Noise
	t := time.Duration(s.n) * s.cfg.DT
	if r := s.cfg.TimeResolution; r > 0 {
		t -= t % r
	}
	*dst = dyno.Sample{
		Load:         dyno.Missing,
		Time:         t,
		RPM:          rpm + s.noiseRel(n.RPM, n.RPMPct, rpm),
		MAP:          mp + s.noiseRel(n.MAP, n.MAPPct, mp),
		TPS:          min(max(s.tps+s.noise(n.TPS), 0), 100),
		AFR:          dyno.MissingPerCylinder(),
		AFRCommanded: dyno.MissingPerCylinder(),
		Lambda:       dyno.MissingPerCylinder(),
		Spark:        dyno.MissingPerCylinder(),
		Knock:        dyno.MissingPerCylinder(),
		IAT:          s.cfg.IATC,
		ECT:          s.cfg.ECTC,
		Baro:         s.baro,
	}
	// The widebands' relative noise: AFRPct on burnt gas, the fuel-cut
	// noise on air, blended by the share of fuel-cut exhaust they see.
	relPct := n.AFRPct*(1-s.cutSensor) + 100*s.cutNoise*s.cutSensor
	tgt := e.target
	for c := range 2 {
		a := meas[c] + s.noiseRel(n.AFR, relPct, meas[c])
		dst.AFR[c] = a
		dst.Lambda[c] = a / simStoich
		dst.AFRCommanded[c] = tgt
		kn := e.knock[c]
		dst.Knock[c] = kn
		dst.Spark[c] = s.spark[c].At(rpm, mp) - kn
	}
	tqMeas := tq * (1 + s.noise(n.TorquePct)/100)
	dst.Torque = tqMeas
	dst.Power = dyno.PowerFromTorque(tqMeas, rpm)
	drumRPM := rpm / s.prof.GearRatio
	dst.DrumSpeed = drumRPM * DrumCircumferenceFt * 60 / 5280
	dst.DrumForce = tqMeas * s.prof.GearRatio / (DrumCircumferenceFt / (2 * math.Pi))

	s.status.RPM, s.status.MAP, s.status.TPS, s.status.Torque = rpm, mp, s.tps, tq
	s.status.ProducedAFR = prod
	s.status.FuelCut, s.status.Transient = s.cut, s.transient
}

// delayed returns the value of ring h (newest at s.hist) pos steps ago,
// interpolated between steps; before the history is that long, the oldest
// value.
func (s *Simulator) delayed(h []float64, pos float64) float64 {
	k0 := int(pos)
	fr := pos - float64(k0)
	at := func(k int) float64 {
		k = min(k, s.filled-1)
		return h[(s.hist-k+len(h))%len(h)]
	}
	if fr == 0 {
		return at(k0)
	}
	return at(k0)*(1-fr) + at(k0+1)*fr
}
