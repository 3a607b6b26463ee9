package dynolog

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/dynoai/dynoai/dyno"
)

// The verdicts of this file rest on a bounded prefix of the log: the first
// DefaultPrefixRows data rows (ReadOptions.PrefixRows), or fewer when the
// log is shorter or its first prefixBytes bytes hold fewer rows. Most logs
// are judged whole; a longer one is judged on its first minutes, and the
// reader never holds more than that.
const (
	// DefaultPrefixRows is how many data rows the reader judges before it
	// decides columns, units and health.
	DefaultPrefixRows = 8192
	prefixBytes       = 8 << 20
)

// stdBaro is the barometer assumed when a log has none, kPa.
const stdBaro = 101.325

// minJudged is the fewest values a column needs for a verdict other than
// unknown.
const minJudged = 3

// scanPrefix reads the candidate columns' values over the prefix rows.
func (r *Reader) scanPrefix(cols []*column) {
	if len(cols) == 0 || r.prefix == nil {
		return
	}
	for _, c := range cols {
		c.vals = make([]float64, 0, r.prefix.rows())
	}
	r.prefix.each(func(get func(col int, wallclock bool) (float64, cellKind)) {
		for _, c := range cols {
			v, kind := get(c.idx, c.conv == convWallclock)
			if kind == cellWords {
				c.text++
			}
			if kind != cellNumber {
				v = math.NaN()
			}
			c.vals = append(c.vals, v)
		}
	})
}

// cellKind says what a prefix cell held.
type cellKind uint8

const (
	cellEmpty  cellKind = iota // empty, or a placeholder for no value ("∞", "NaN", "---")
	cellNumber                 // a finite number
	cellWords                  // text that is not a number ("D4")
)

// summary describes a set of values.
type summary struct {
	n                int // finite values
	min, max, median float64
	mode             float64 // the most frequent value
	modeN            int
	neg, zero        int // negative values, zeros
}

// summarize describes the finite values of v at the rows where mask is
// true (every row when mask is nil). The median and mode come from at most
// summaryPoints of them, evenly spread, so a verdict costs the same on a
// long prefix; min, max and the counts see every value.
func summarize(v []float64, mask []bool) summary {
	var s summary
	s.min, s.max = math.Inf(1), math.Inf(-1)
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) || (mask != nil && !mask[i]) {
			continue
		}
		s.n++
		if x < s.min {
			s.min = x
		}
		if x > s.max {
			s.max = x
		}
		if x < 0 {
			s.neg++
		}
		if x == 0 {
			s.zero++
		}
	}
	if s.n == 0 {
		s.min, s.max = 0, 0
		return s
	}
	stride := max(1, s.n/summaryPoints)
	xs := make([]float64, 0, min(s.n, summaryPoints+1))
	k := 0
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) || (mask != nil && !mask[i]) {
			continue
		}
		if k%stride == 0 {
			xs = append(xs, x)
		}
		k++
	}
	slices.Sort(xs)
	s.median = xs[len(xs)/2]
	run, best := 0, 0
	for i := range xs {
		if i > 0 && xs[i] == xs[i-1] {
			run++
		} else {
			run = 1
		}
		if run > best {
			best, s.mode = run, xs[i]
		}
	}
	// The mode's count over every value, from its share of the sample.
	s.modeN = best * s.n / len(xs)
	return s
}

// summaryPoints is how many values a summary sorts at most.
const summaryPoints = 1024

// num formats a value for a report: few digits, no exponent.
func num(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.1f", v)
	case a >= 10:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func rng(s summary) string {
	if s.n == 0 {
		return "no values"
	}
	if s.min == s.max {
		return num(s.min)
	}
	return num(s.min) + ".." + num(s.max)
}

// decideUnits settles every column's unit: a stated unit that the values
// confirm, a stated unit the values contradict (overruled, with the
// reason), or, when none is stated, the unit the values show (kRPM, psi or
// bar or kPa, gauge or absolute, °C or °F, lambda or AFR). Each decision is
// reported with its reason.
func (r *Reader) decideUnits(cols []*column) error {
	for _, c := range cols {
		s := summarize(c.vals, nil)
		if c.vals != nil && s.n == 0 && c.text >= minJudged {
			c.unusable = "text, not numbers"
			continue
		}
		if c.unit == dyno.UnitVolt {
			c.unusable = "a raw sensor voltage (V), not a calibrated " + c.ch.String()
			continue
		}
		if c.unit != dyno.UnitAuto && !c.ch.Accepts(c.unit) {
			if c.unitSrc == "option" {
				return &ParseError{File: r.name, Column: c.header, ColumnIndex: c.idx + 1,
					Err: fmt.Errorf("%w: unit %v does not fit channel %v", ErrUnknownFormat, c.unit, c.ch)}
			}
			c.unitReason = fmt.Sprintf("the %s says %s, which does not measure %s", c.unitSrc, c.unit, c.ch)
			c.unit, c.unitSrc = dyno.UnitAuto, ""
		}
		if c.vals == nil && c.unit == dyno.UnitAuto && c.conv == convPlain && !r.opts.Verbatim {
			// No prefix to judge (Pro-XY): guess per cell.
			switch c.ch {
			case dyno.ChanRPM:
				c.unit, c.conv, c.unitSrc = dyno.UnitRPM, convKRPMAuto, "per value"
				continue
			case dyno.ChanBaro:
				c.unit, c.conv, c.unitSrc = dyno.UnitKPa, convBaroAuto, "per value"
				continue
			case dyno.ChanAFR, dyno.ChanAFRCommanded, dyno.ChanLambda:
				c.unit, c.conv, c.unitSrc = dyno.UnitAuto, convMixAuto, "per value"
				continue
			}
		}
		switch c.ch {
		case dyno.ChanTime:
			if c.unit == dyno.UnitAuto {
				c.unit, c.unitSrc = dyno.UnitSeconds, "channel"
			}
		case dyno.ChanRPM:
			r.inferRPM(c, s)
		case dyno.ChanMAP, dyno.ChanBaro:
			r.inferPressure(c, s)
		case dyno.ChanLoad:
			r.inferLoad(c)
		case dyno.ChanAFR, dyno.ChanAFRCommanded, dyno.ChanLambda:
			r.inferMixture(c, s)
		case dyno.ChanIAT, dyno.ChanECT:
			// decided together below
		default:
			if c.unit == dyno.UnitAuto {
				c.unit, c.unitSrc = dyno.CanonicalUnit(c.ch), "channel"
			}
		}
	}
	r.inferTemperatures(cols)
	return nil
}

func (r *Reader) inferRPM(c *column, s summary) {
	switch {
	case c.unitSrc == "option":
	case c.unit == dyno.UnitKRPM && s.n > 0 && s.max > 100:
		c.unit, c.unitSrc, c.unitReason = dyno.UnitRPM, "inferred", fmt.Sprintf("labelled krpm, but values reach %s", num(s.max))
	case (c.unit == dyno.UnitAuto || c.unit == dyno.UnitRPM) && s.n > 0 && s.max > 0 && s.max < 30:
		reason := fmt.Sprintf("values %s are thousands of rpm", rng(s))
		if c.unit == dyno.UnitRPM {
			reason = "labelled rpm, but " + reason
		}
		c.unit, c.unitSrc, c.unitReason = dyno.UnitKRPM, "inferred", reason
	case c.unit == dyno.UnitAuto:
		c.unit, c.unitSrc = dyno.UnitRPM, "channel"
	}
}

// inferPressure decides a MAP or barometer column's unit, and for MAP
// whether it is gauge (boost relative to the barometer) or absolute.
func (r *Reader) inferPressure(c *column, s summary) {
	stated := c.unit
	if c.unitSrc == "option" || s.n == 0 {
		if c.unit == dyno.UnitAuto {
			c.unit, c.unitSrc = dyno.UnitKPa, "channel"
		}
		return
	}
	if c.ch == dyno.ChanBaro {
		u := stated
		if u == dyno.UnitAuto || !plausibleBaro(u.ToCanonical(s.median)) {
			for _, cand := range []dyno.Unit{dyno.UnitKPa, dyno.UnitInHg, dyno.UnitMbar, dyno.UnitPSI, dyno.UnitBar} {
				if plausibleBaro(cand.ToCanonical(s.median)) {
					u = cand
					break
				}
			}
		}
		if u != stated {
			reason := fmt.Sprintf("values near %s", num(s.median))
			if stated != dyno.UnitAuto {
				reason = fmt.Sprintf("labelled %s, but %s", stated, reason)
			}
			c.unit, c.unitSrc, c.unitReason = u, "inferred", reason
		}
		if c.unit == dyno.UnitAuto {
			c.unit, c.unitSrc = dyno.UnitKPa, "channel"
		}
		return
	}
	// MAP. A running engine's absolute MAP never reads below about 8 kPa
	// (deep decel) and reaches the barometer at full throttle; in psi it
	// idles at 4 to 7 and tops out near 14.7 unless boosted; in bar it
	// stays below 3.5. Negative values are a gauge reading vacuum.
	u := stated
	switch {
	case stated == dyno.UnitAuto && s.min < 0:
		switch {
		case s.min >= -1.05 && s.max <= 4:
			u = dyno.UnitBar
		case s.min >= -15.5 && s.max <= 60:
			u = dyno.UnitPSI
		default:
			u = dyno.UnitKPa
		}
	case stated == dyno.UnitAuto:
		switch {
		case s.max <= 3.5:
			u = dyno.UnitBar
		case s.max <= 16 || (s.max <= 45 && s.min < 8):
			u = dyno.UnitPSI
		default:
			u = dyno.UnitKPa
		}
	case stated == dyno.UnitKPa && s.max > 0 && s.max <= 16:
		u = dyno.UnitPSI
	case (stated == dyno.UnitPSI || stated == dyno.UnitBar) && s.min >= 15 && s.max > 60:
		u = dyno.UnitKPa
	}
	// Gauge: a boost gauge reads vacuum as negative.
	gauge := false
	switch u {
	case dyno.UnitKPa:
		gauge = s.min < -5
	case dyno.UnitPSI:
		gauge = s.min < -0.7
	case dyno.UnitBar:
		gauge = s.min < -0.05
	}
	if u == stated && !gauge {
		return
	}
	var reason string
	switch {
	case stated == dyno.UnitAuto:
		reason = fmt.Sprintf("no unit stated; values %s", rng(s))
	case u != stated:
		reason = fmt.Sprintf("labelled %s, but values %s", stated, rng(s))
	default:
		reason = fmt.Sprintf("values %s", rng(s))
	}
	if gauge {
		reason += " go negative: gauge pressure, the barometer is added"
	}
	c.unit, c.unitSrc, c.unitReason, c.gauge = u, "inferred", reason, gauge
}

func plausibleBaro(kpa float64) bool { return kpa >= 50 && kpa <= 110 }

// inferLoad keeps the ECU load's unit: kPa or percent as stated, or kPa
// when the name says it indexes by manifold pressure.
func (r *Reader) inferLoad(c *column) {
	if c.unit != dyno.UnitAuto {
		return
	}
	if strings.Contains(c.norm, "map") || strings.Contains(c.norm, "indx") || strings.Contains(c.norm, "kpa") {
		c.unit, c.unitSrc, c.unitReason = dyno.UnitKPa, "inferred", "the name says manifold pressure"
		return
	}
	c.unit, c.unitSrc = dyno.UnitPercent, "channel"
}

// inferMixture tells lambda from AFR by the values: a running engine's
// lambda lies near 1, its AFR near the stoichiometric ratio.
func (r *Reader) inferMixture(c *column, s summary) {
	if c.unitSrc == "option" {
		return
	}
	pos := summarize(positive(c.vals), nil)
	if pos.n == 0 {
		if c.unit == dyno.UnitAuto {
			c.unit, c.unitSrc = dyno.CanonicalUnit(c.ch), "channel"
		}
		return
	}
	u := dyno.UnitAFR
	if pos.median <= 3 {
		u = dyno.UnitLambda
	}
	// A stated unit is overruled only by values that read plainly as the
	// other one.
	plainLambda := pos.median >= 0.5 && pos.median <= 1.8
	plainAFR := pos.median >= 5 && pos.median <= 30
	switch {
	case c.unit == u:
	case c.unit == dyno.UnitLambda && !plainAFR, c.unit == dyno.UnitAFR && !plainLambda:
	case c.unit == dyno.UnitAuto:
		c.unit, c.unitSrc, c.unitReason = u, "inferred", fmt.Sprintf("values %s", rng(pos))
	default:
		c.unitReason = fmt.Sprintf("labelled %s, but values %s are %s", c.unit, rng(pos), u)
		c.unit, c.unitSrc = u, "inferred"
	}
}

func positive(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		if x > 0 {
			out[i] = x
		} else {
			out[i] = math.NaN()
		}
	}
	return out
}

// Temperatures a running engine shows, °C: coolant and intake air.
const (
	maxECTC = 135
	maxIATC = 130 // a turbocharged engine without an intercooler
)

// tempPlausibility says how ordinary a temperature column's values are,
// read in °C: 1 for what engines and intakes usually show, less for the
// possible but unusual, 0 for the impossible.
func tempPlausibility(ch dyno.Channel, s summary) float64 {
	if ch == dyno.ChanIAT {
		switch m := s.median; {
		case s.min < -40 || s.max > maxIATC:
			return 0
		case m >= -10 && m <= 50:
			return 1
		case m <= 60:
			return 0.6
		case m <= 85:
			return 0.3
		default:
			return 0.1
		}
	}
	switch m := s.median; {
	case s.min < -40 || s.max > maxECTC:
		return 0
	case m >= 70 && m <= 115:
		return 1 // a warm engine
	case m >= 40 && m < 70:
		return 0.7 // warming up
	case m >= -10 && m < 40:
		return 0.6 // a cold start
	default:
		return 0.4
	}
}

// inferTemperatures decides the intake and coolant temperatures' units
// together, since a log states them in one system: labels are kept unless
// the values contradict them (temperatures labelled K that read like room
// and engine temperatures are °C); unlabelled columns take the system in
// which every unlabelled column reads most ordinarily (a coolant near 90
// is a warm engine in °C, an intake at 65 a cool evening in °F), and the
// format's convention when the values fit both about equally.
func (r *Reader) inferTemperatures(cols []*column) {
	var open []*column // the columns whose unit is to be decided
	var stated dyno.Unit
	statedBy := ""
	for _, c := range cols {
		if (c.ch != dyno.ChanIAT && c.ch != dyno.ChanECT) || c.unusable != "" {
			continue
		}
		s := summarize(c.vals, nil)
		limit := float64(maxIATC)
		if c.ch == dyno.ChanECT {
			limit = maxECTC
		}
		switch {
		case c.unitSrc == "option":
			continue
		case c.unit == dyno.UnitKelvin && s.n > 0 && s.max < 200:
			c.unit, c.unitSrc = dyno.UnitCelsius, "inferred"
			c.unitReason = fmt.Sprintf("labelled K, but values %s are °C", rng(s))
		case c.unit == dyno.UnitCelsius && s.n > 0 && s.max > limit+20:
			c.unit, c.unitSrc = dyno.UnitFahrenheit, "inferred"
			c.unitReason = fmt.Sprintf("labelled °C, but values reach %s", num(s.max))
		case c.unit != dyno.UnitAuto:
		case s.n == 0:
			c.unit, c.unitSrc = r.formatTempUnit(), "format"
			continue
		default:
			open = append(open, c)
			continue
		}
		if stated == dyno.UnitAuto && c.unit != dyno.UnitKelvin {
			stated, statedBy = c.unit, c.header
		}
	}
	if len(open) == 0 {
		return
	}
	// Judge each channel once, on its best-ranked column (duplicates of a
	// channel in other modules say the same).
	pc, pf := 1.0, 1.0
	var ranges []string
	judged := map[dyno.Channel]bool{}
	slices.SortStableFunc(open, func(a, b *column) int { return a.rank - b.rank })
	for _, c := range open {
		if judged[c.ch] {
			continue
		}
		judged[c.ch] = true
		s := summarize(c.vals, nil)
		pc *= tempPlausibility(c.ch, s)
		f := s
		f.min, f.max, f.median = dyno.FahrenheitToCelsius(s.min), dyno.FahrenheitToCelsius(s.max), dyno.FahrenheitToCelsius(s.median)
		pf *= tempPlausibility(c.ch, f)
		ranges = append(ranges, fmt.Sprintf("%s %s", c.ch, rng(s)))
	}
	what := "no unit stated; " + strings.Join(ranges, ", ")
	var u dyno.Unit
	var why string
	switch {
	case stated != dyno.UnitAuto:
		u, why = stated, fmt.Sprintf("%s: %s as %q", what, stated, statedBy)
	case pc == 0 && pf == 0:
		u, why = r.formatTempUnit(), fmt.Sprintf("%s: implausible in °C and °F; %s, the %s convention", what, r.formatTempUnit(), r.format)
	case pf == 0:
		u, why = dyno.UnitCelsius, fmt.Sprintf("%s: too cold for °F", what)
	case pc == 0:
		u, why = dyno.UnitFahrenheit, fmt.Sprintf("%s: too hot for °C", what)
	case pc >= 1.3*pf:
		u, why = dyno.UnitCelsius, fmt.Sprintf("%s: ordinary in °C, unusual in °F", what)
	case pf >= 1.3*pc:
		u, why = dyno.UnitFahrenheit, fmt.Sprintf("%s: ordinary in °F, unusual in °C", what)
	case r.tempHint != dyno.UnitAuto:
		u, why = r.tempHint, what+": fits °C and °F; "+r.tempHintWhy
	default:
		u, why = r.formatTempUnit(), fmt.Sprintf("%s: fits °C and °F; %s, the %s convention", what, r.formatTempUnit(), r.format)
	}
	for _, c := range open {
		c.unit, c.unitSrc, c.unitReason = u, "inferred", why
	}
}

// formatTempUnit is the temperature unit a format's logs use when nothing
// says: °F for Dynojet, Power Vision, MegaSquirt-era logs and the
// predecessor's CSVs (US tools), °C for the rest.
func (r *Reader) formatTempUnit() dyno.Unit {
	switch r.format {
	case FormatWinPEP8, FormatPowerVision, FormatMSL, FormatCSV, FormatProXY:
		return dyno.UnitFahrenheit
	}
	return dyno.UnitCelsius
}

// judgeHealth gives every column a verdict from its prefix values,
// converted to its channel's unit. Engine channels first: whether the
// engine runs and is under load is the context the widebands are judged
// in.
func (r *Reader) judgeHealth(cols []*column) {
	if r.prefix == nil || r.prefix.rows() == 0 {
		return
	}
	r.prefixBaro = stdBaro
	order := []dyno.Channel{dyno.ChanBaro, dyno.ChanRPM, dyno.ChanMAP, dyno.ChanTPS, dyno.ChanLoad}
	var running, loaded []bool
	for _, ch := range order {
		for _, c := range cols {
			if c.ch == ch && c.unusable == "" {
				r.judgeEngine(c)
			}
		}
		switch ch {
		case dyno.ChanBaro:
			if c := bestLive(cols, dyno.ChanBaro); c != nil {
				if s := c.canonicalSummary(r.stoich, 0); s.n > 0 && plausibleBaro(s.median) {
					r.prefixBaro = s.median
				}
			}
		case dyno.ChanRPM:
			if c := bestLive(cols, dyno.ChanRPM); c != nil {
				rpm := c.canonical(r.stoich, 0)
				running = make([]bool, len(rpm))
				for i, v := range rpm {
					running[i] = v > 400
				}
			}
		}
	}
	if c := bestLive(cols, dyno.ChanTPS); c != nil {
		tps := c.canonical(r.stoich, 0)
		loaded = make([]bool, len(tps))
		for i, v := range tps {
			loaded[i] = v >= 60 && (running == nil || running[i])
		}
	} else if c := bestLive(cols, dyno.ChanMAP); c != nil {
		mp := c.canonical(r.stoich, r.prefixBaro)
		loaded = make([]bool, len(mp))
		for i, v := range mp {
			loaded[i] = v >= 0.8*r.prefixBaro && (running == nil || running[i])
		}
	}
	for _, c := range cols {
		if c.unusable != "" || c.health != dyno.HealthUnknown {
			continue
		}
		switch c.ch {
		case dyno.ChanAFR, dyno.ChanLambda:
			r.judgeWideband(c, running, loaded)
		case dyno.ChanAFRCommanded:
			r.judgeTarget(c, running)
		case dyno.ChanTorque, dyno.ChanPower:
			r.judgeTorque(c)
		default:
			s := summarize(c.vals, nil)
			if s.n == 0 {
				r.empty(c)
			} else {
				c.health = dyno.HealthOK
			}
		}
	}
}

// bestLive returns the best-ranked column of ch that is not dead.
func bestLive(cols []*column, ch dyno.Channel) *column {
	var best *column
	for _, c := range cols {
		if c.ch != ch || c.unusable != "" || c.health == dyno.HealthDead {
			continue
		}
		if best == nil || c.rank < best.rank {
			best = c
		}
	}
	return best
}

// empty marks a column without a value in the prefix: dead when the
// prefix is the whole log, unknown otherwise.
func (r *Reader) empty(c *column) {
	if c.text > 0 {
		// Cells that are not numbers: reading reports them where they are.
		c.health, c.why = dyno.HealthUnknown, fmt.Sprintf("%d cells of text, no numbers", c.text)
		return
	}
	if r.prefix.isComplete() {
		c.health, c.why = dyno.HealthDead, "empty in every row"
		return
	}
	c.health, c.why = dyno.HealthUnknown, fmt.Sprintf("empty in the first %d rows", r.prefix.rows())
}

// judgeEngine judges speed, load and throttle columns: flat lines and
// values outside what the channel can read.
func (r *Reader) judgeEngine(c *column) {
	v := c.canonical(r.stoich, r.prefixBaro)
	s := c.canonicalSummary(r.stoich, r.prefixBaro)
	if s.n == 0 {
		r.empty(c)
		return
	}
	if s.n < minJudged {
		return
	}
	flat := s.n >= 20 && s.max-s.min < 1e-9
	switch c.ch {
	case dyno.ChanRPM:
		switch {
		case s.max <= 0:
			c.health, c.why = dyno.HealthDead, "reads "+num(s.max)+" throughout"
		case flat:
			c.health, c.why = dyno.HealthDead, "constant "+num(s.max)
		case s.max > 25000:
			c.health, c.why = dyno.HealthDead, fmt.Sprintf("values up to %s are no engine speed", num(s.max))
		default:
			c.health = dyno.HealthOK
		}
	case dyno.ChanMAP:
		out := 0
		for _, x := range v {
			if !math.IsNaN(x) && (x < 2 || x > 600) {
				out++
			}
		}
		switch {
		case flat || (s.n >= 20 && s.max-s.min < 0.3):
			c.health, c.why = dyno.HealthDead, "constant "+num(s.median)+" kPa: no manifold pressure signal"
		case out*2 > s.n:
			c.health, c.why = dyno.HealthDead, fmt.Sprintf("values %s kPa are no manifold pressure", rng(s))
		default:
			c.health = dyno.HealthOK
		}
	case dyno.ChanTPS:
		out := 0
		for _, x := range v {
			if !math.IsNaN(x) && (x < -10 || x > 110) {
				out++
			}
		}
		switch {
		case flat:
			c.health, c.why = dyno.HealthDead, "constant "+num(s.max)+": no throttle signal"
		case out*2 > s.n:
			c.health, c.why = dyno.HealthDead, fmt.Sprintf("values %s are no throttle position in percent", rng(s))
		default:
			c.health = dyno.HealthOK
		}
	case dyno.ChanLoad:
		if flat {
			c.health, c.why = dyno.HealthDead, "constant "+num(s.max)
		} else {
			c.health = dyno.HealthOK
		}
	default:
		c.health = dyno.HealthOK
	}
}

// judgeWideband judges a measured AFR or lambda column in AFR: no sensor
// (0, −8), an input with nothing connected (a constant), readings that are
// no air-fuel ratio, a sensor pegged at one end, and a probe that reads
// free air while the engine pulls hard. Scattered zeros are treated as
// missing readings.
func (r *Reader) judgeWideband(c *column, running, loaded []bool) {
	afrScale := 1.0
	if c.ch == dyno.ChanLambda {
		afrScale = r.stoich
	}
	v := c.canonical(r.stoich, 0)
	if afrScale != 1 {
		v = slices.Clone(v)
		for i := range v {
			v[i] *= afrScale
		}
	}
	all := summarize(v, running)
	if all.n == 0 {
		all = summarize(v, nil)
		running = nil
	}
	if all.n == 0 {
		r.empty(c)
		return
	}
	const sentinelMax = 1.0 // 0, negative: "no reading"
	live := make([]float64, len(v))
	nLive := 0
	for i, x := range v {
		if x > sentinelMax && (running == nil || running[i]) {
			live[i] = x
			nLive++
		} else {
			live[i] = math.NaN()
		}
	}
	unit := "AFR"
	show := func(x float64) string { return num(x / afrScale) }
	if c.ch == dyno.ChanLambda {
		unit = "lambda"
	}
	if all.n < minJudged {
		c.health = dyno.HealthUnknown
		c.why = fmt.Sprintf("%d values: too few to judge", all.n)
		if nLive < all.n {
			c.guard, c.lo, c.hi = true, sentinelMax/afrScale, math.Inf(1)
		}
		return
	}
	if nLive == 0 {
		c.health, c.why = dyno.HealthDead, fmt.Sprintf("reads %s throughout: no sensor", show(all.mode))
		return
	}
	if nLive*20 < all.n {
		c.health, c.why = dyno.HealthDead, fmt.Sprintf("%d of %d readings are %s or below: no sensor", all.n-nLive, all.n, show(sentinelMax))
		return
	}
	s := summarize(live, nil)
	lo, hi := 0.5*r.stoich, 1.75*r.stoich
	out := 0
	for _, x := range live {
		if !math.IsNaN(x) && (x < lo || x > hi) {
			out++
		}
	}
	modeFrac := float64(s.modeN) / float64(s.n)
	switch {
	case s.n >= 5 && s.max-s.min < 0.05*r.stoich/14.7 && s.max >= 1.25*r.stoich:
		c.health, c.why = dyno.HealthDead, fmt.Sprintf("constant %s %s: pegged lean (a sensor not ready, in free air, or its top of range)", show(s.max), unit)
		return
	case s.n >= 5 && s.max-s.min < 0.05*r.stoich/14.7:
		c.health, c.why = dyno.HealthDead, fmt.Sprintf("constant %s %s: an input with no sensor connected", show(s.max), unit)
		return
	case out*2 > s.n:
		c.health, c.why = dyno.HealthDead, fmt.Sprintf("values %s..%s are no %s", show(s.min), show(s.max), unit)
		return
	case s.n >= 10 && modeFrac > 0.6 && (s.mode == s.max || s.mode == s.min):
		c.health, c.why = dyno.HealthDead, fmt.Sprintf("pegged at %s in %.0f%% of readings", show(s.mode), 100*modeFrac)
		return
	}
	if loaded != nil {
		ls := summarize(live, loaded)
		if ls.n >= 5 && ls.median >= 1.15*r.stoich {
			c.health, c.why = dyno.HealthDead, fmt.Sprintf("reads %s..%s (median %s) under load: a probe in free air, not in the exhaust",
				show(ls.min), show(ls.max), show(ls.median))
			return
		}
	}
	c.health = dyno.HealthOK
	if nLive < all.n {
		c.health = dyno.HealthSuspect
		c.why = fmt.Sprintf("%d readings of %s or below treated as missing", all.n-nLive, show(sentinelMax))
		// The binding stores AFR for an AFR channel, lambda for a lambda one.
		c.guard, c.lo, c.hi = true, sentinelMax/afrScale, math.Inf(1)
	}
}

// judgeTarget judges a commanded AFR column: a target must be one an ECU
// would command, not a wideband's top of range.
func (r *Reader) judgeTarget(c *column, running []bool) {
	v := c.canonical(r.stoich, 0)
	s := c.canonicalSummary(r.stoich, 0)
	if s.n == 0 {
		r.empty(c)
		return
	}
	if s.n < minJudged {
		return
	}
	lo, hi := 0.55*r.stoich, 1.25*r.stoich
	out := 0
	for _, x := range v {
		if !math.IsNaN(x) && (x < lo || x > hi) {
			out++
		}
	}
	switch {
	case out*10 >= s.n*9:
		what := fmt.Sprintf("values %s", rng(s))
		if s.min == s.max {
			what = fmt.Sprintf("%s throughout", num(s.min))
		}
		c.health, c.why = dyno.HealthDead, fmt.Sprintf("%s: no AFR an ECU commands", what)
		if s.median > hi {
			c.why += " (a wideband's top of range?)"
		}
	case out > 0:
		c.health, c.why = dyno.HealthSuspect, fmt.Sprintf("%d values outside %s..%s treated as missing", out, num(lo), num(hi))
		c.guard, c.lo, c.hi = true, lo, hi
	default:
		c.health = dyno.HealthOK
		if s.n >= 20 && s.min == s.max {
			c.why = "constant " + num(s.min)
		}
	}
}

// judgeTorque refuses a torque or power column that measures nothing (a
// logger's virtual dyno left at zero) or that no engine makes: the dyno
// derives torque from its own rpm pickup, which can lose the signal.
func (r *Reader) judgeTorque(c *column) {
	s := c.canonicalSummary(r.stoich, 0)
	switch {
	case s.n == 0:
		r.empty(c)
	case s.n >= 20 && s.min == s.max:
		c.health, c.why = dyno.HealthDead, "constant "+num(s.min)+": not measured"
	case c.ch == dyno.ChanTorque && s.max > 3000:
		c.health, c.why = dyno.HealthDead, fmt.Sprintf("values up to %s ft·lbf: the dyno's rpm pickup lost the signal", num(s.max))
	default:
		c.health = dyno.HealthOK
	}
}

// buildReport describes the columns used and those left out.
func (r *Reader) buildReport(cols []*column) *dyno.ChannelReport {
	rep := &dyno.ChannelReport{Format: r.format}
	if r.prefix != nil {
		rep.Rows = r.prefix.rows()
	}
	for _, b := range r.binds {
		var c *column
		for _, k := range cols {
			if k.idx == b.col && k.used {
				c = k
				break
			}
		}
		if c == nil {
			continue
		}
		s := c.canonicalSummary(r.stoich, r.prefixBaro)
		info := dyno.ChannelInfo{Channel: c.ch, Cylinder: b.cyl, Column: c.header, ColumnIndex: c.idx + 1,
			Unit: c.unit, UnitSource: c.unitSrc, UnitReason: c.unitReason, Values: s.n,
			Health: c.health, HealthReason: c.why}
		if c.ch == dyno.ChanLambda && c.unit == dyno.UnitAFR {
			info.Unit = dyno.UnitAFR
		}
		if s.n > 0 {
			info.Min, info.Max = s.min, s.max
		}
		if c.gauge {
			info.UnitReason = strings.TrimSpace(info.UnitReason + " (gauge)")
		}
		if r.combined && (c.ch == dyno.ChanAFR || c.ch == dyno.ChanLambda) {
			info.Combined = true
		}
		if c.forced {
			info.UnitReason = strings.TrimSpace(info.UnitReason)
			if info.HealthReason != "" {
				info.HealthReason += "; "
			}
			info.HealthReason += "column chosen by the user"
		}
		rep.Channels = append(rep.Channels, info)
	}
	if r.derive.torque {
		rep.Channels = append(rep.Channels, dyno.ChannelInfo{Channel: dyno.ChanTorque, Derived: "power × 5252 / rpm",
			Unit: dyno.UnitFtLb, UnitSource: "channel", Health: dyno.HealthOK})
	}
	if r.derive.power {
		rep.Channels = append(rep.Channels, dyno.ChannelInfo{Channel: dyno.ChanPower, Derived: "torque × rpm / 5252",
			Unit: dyno.UnitHP, UnitSource: "channel", Health: dyno.HealthOK})
	}
	if r.derive.afr && !hasColumnFor(rep, dyno.ChanAFR) {
		rep.Channels = append(rep.Channels, dyno.ChannelInfo{Channel: dyno.ChanAFR, Cylinder: AllCylinders,
			Derived: fmt.Sprintf("lambda × %s", num(r.stoich)), Unit: dyno.UnitAFR, UnitSource: "channel",
			Health: dyno.HealthOK, Combined: r.combined})
	}
	for _, c := range cols {
		if c.used {
			continue
		}
		why := c.unusable
		switch {
		case why != "":
		case c.health == dyno.HealthDead:
			why = "dead: " + c.why
		case c.notUsed != "":
			why = c.notUsed
		default:
			why = "not chosen"
		}
		u := dyno.UnusedColumn{Column: c.header, ColumnIndex: c.idx + 1, Channel: c.ch, Cylinder: c.cyl, Reason: why,
			Health: c.health, Unit: dyno.CanonicalUnit(c.ch)}
		if c.unusable == "" {
			if s := c.canonicalSummary(r.stoich, r.prefixBaro); s.n > 0 {
				u.Min, u.Max = s.min, s.max
			}
		} else if s := summarize(c.vals, nil); s.n > 0 {
			u.Min, u.Max, u.Unit = s.min, s.max, c.unit
		}
		if c.ch == dyno.ChanLoad {
			u.Unit = c.unit
		}
		rep.Unused = append(rep.Unused, u)
	}
	rep.Notes = append(rep.Notes, r.notes...)
	return rep
}

func hasColumnFor(rep *dyno.ChannelReport, ch dyno.Channel) bool {
	for _, c := range rep.Channels {
		if c.Channel == ch {
			return true
		}
	}
	return false
}
