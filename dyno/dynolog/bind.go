package dynolog

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/dynoai/dynoai/dyno"
)

// conv says how a bound column's cells become a Sample value.
type conv uint8

const (
	convPlain     conv = iota // the unit's conversion (Unit.ToCanonical, or lambda and AFR)
	convWallclock             // time as a date-time string
	// Per-cell guesses, for logs read without a prefix to judge (Pro-XY):
	convKRPMAuto // rpm, or thousands of rpm when below 30
	convBaroAuto // inHg below 40, mbar above 200, else kPa
	convMixAuto  // lambda when in (0, 3], else AFR
)

// binding is a column the reader decodes into a Sample.
type binding struct {
	col     int
	header  string
	alias   string // the alias matched, normalised
	ch      dyno.Channel
	cyl     int
	unit    dyno.Unit
	conv    conv
	cylMask uint16 // for AllCylinders: the slots to fill
	// linear is set when the conversion is v×mul: the channel's own unit
	// (mul 1) or lambda to AFR (mul = stoich).
	linear bool
	mul    float64
	// guard drops converted values outside lo..hi (sentinels such as a
	// wideband's 0 or −8 "no reading") as Missing.
	guard  bool
	lo, hi float64
}

// column is one header of the log and what the reader makes of it: the
// channel an alias (or ReadOptions.Map) gives it, its unit and who stated
// it, its values over the judged prefix, and the verdicts.
type column struct {
	idx    int
	header string
	norm   string
	ch     dyno.Channel
	cyl    int
	rank   int // lower wins among the candidates of one channel and cylinder
	alias  string
	forced bool // named by ReadOptions.Map
	user   bool // matched one of ReadOptions.Aliases

	unit       dyno.Unit // as stated, then as decided
	unitSrc    string    // "header", "units row", "option", "alias", "format", "inferred", "channel"
	unitReason string
	gauge      bool // a gauge pressure: the barometer is added
	conv       conv

	vals []float64 // prefix values as read (NaN when empty); nil without a prefix
	text int       // prefix cells that are text, not numbers

	health dyno.Health
	why    string
	guard  bool
	lo, hi float64

	unusable string // why the column cannot be used at all (a voltage, text)
	used     bool
	notUsed  string // why a usable column was not chosen

	// canonical's cache: the values converted, and their summary
	cv     []float64
	cvBaro float64
	cs     *summary
}

func (c *column) slotKey() int { return int(c.ch)<<8 | (c.cyl + 1) }

// canonical returns the column's prefix values converted to its channel's
// unit (gauge pressures made absolute with baro), with Missing kept. The
// slice is cached (units are decided by the time it is asked for): callers
// must not modify it.
func (c *column) canonical(stoich, baro float64) []float64 {
	if c.cv != nil && (!c.gauge || baro == c.cvBaro) {
		return c.cv
	}
	out := make([]float64, len(c.vals))
	for i, v := range c.vals {
		out[i] = c.convert(v, stoich, baro)
	}
	c.cv, c.cvBaro, c.cs = out, baro, nil
	return out
}

// canonicalSummary summarizes canonical's values, cached.
func (c *column) canonicalSummary(stoich, baro float64) summary {
	v := c.canonical(stoich, baro)
	if c.cs == nil {
		s := summarize(v, nil)
		c.cs = &s
	}
	return *c.cs
}

// convert applies the column's decided unit to one raw value.
func (c *column) convert(v, stoich, baro float64) float64 {
	if math.IsNaN(v) {
		return v
	}
	switch {
	case c.unit == dyno.UnitLambda && c.ch != dyno.ChanLambda:
		v *= stoich
	case c.unit == dyno.UnitAFR && c.ch == dyno.ChanLambda:
		v /= stoich
	case c.unit == dyno.UnitLambda || c.unit == dyno.UnitAFR:
	default:
		v = c.unit.ToCanonical(v)
	}
	if c.gauge {
		v += baro
	}
	return v
}

// bind decides which column feeds which channel, in which unit, and builds
// the reader's bindings, layout and channel report. It runs in named steps;
// the prefix of data rows read ahead (r.prefix) is what the verdicts rest on.
func (r *Reader) bind(units []string) error {
	aliases, err := r.aliasTable()
	if err != nil {
		return err
	}
	cols, err := r.matchColumns(aliases, units)
	if err != nil {
		return err
	}
	if cols, err = r.applyMappings(cols); err != nil {
		return err
	}
	if !r.opts.Verbatim {
		r.scanPrefix(cols)
	}
	if err := r.decideUnits(cols); err != nil {
		return err
	}
	if !r.opts.Verbatim {
		r.judgeHealth(cols)
	}
	chosen := r.pickColumns(cols)
	r.makeBindings(chosen)
	r.report = r.buildReport(cols)
	return r.checkRequired()
}

// aliasTable validates the caller's aliases and puts them before the
// built-in ones.
func (r *Reader) aliasTable() ([]Alias, error) {
	aliases := append([]Alias(nil), r.opts.Aliases...)
	for i := range aliases {
		a := &aliases[i]
		a.Name = NormalizeHeader(a.Name)
		if a.Name == "" || !a.Channel.Valid() || !a.Unit.Valid() ||
			(a.Channel.PerCylinder() && (a.Cyl < AllCylinders || a.Cyl >= dyno.MaxCylinders)) ||
			(a.Unit != dyno.UnitAuto && !a.Channel.Accepts(a.Unit)) {
			return nil, fmt.Errorf("%s: %w: %+v", r.name, ErrBadAlias, r.opts.Aliases[i])
		}
	}
	if !r.opts.NoDefaultAliases {
		aliases = append(aliases, defaultAliases...)
	}
	return aliases, nil
}

// matchColumns matches every header against the aliases and records the
// unit stated for it: by the alias, the header's own suffix ("MAP (psi)"),
// the units row, or the options (which win).
func (r *Reader) matchColumns(aliases []Alias, units []string) ([]*column, error) {
	colUnits := map[string]dyno.Unit{}
	for k, v := range r.opts.ColumnUnits {
		colUnits[NormalizeHeader(k)] = v
	}
	var cols []*column
	for i, h := range r.headers {
		norm := NormalizeHeader(h)
		m, ok := matchNormalized(norm, aliases)
		if !ok {
			continue
		}
		a := m.Alias
		c := &column{idx: i, header: h, norm: norm, ch: a.Channel, cyl: a.Cyl, rank: m.Rank, alias: a.Name,
			unit: m.Unit, health: dyno.HealthUnknown}
		if !a.Channel.PerCylinder() {
			c.cyl = 0
		}
		switch {
		case m.Unit == dyno.UnitAuto:
		case a.Unit != dyno.UnitAuto:
			c.unitSrc = "alias"
		default:
			c.unitSrc = "header"
		}
		c.user = m.Rank/8 < len(r.opts.Aliases)
		c.rank += r.sourcePenalty(c)
		if c.unit == dyno.UnitAuto && i < len(units) {
			if u, ok := dyno.ParseUnit(units[i]); ok && u != dyno.UnitAuto {
				c.unit, c.unitSrc = u, "units row"
			}
		}
		if err := r.optionUnit(c, colUnits); err != nil {
			return nil, err
		}
		if c.ch == dyno.ChanTime && r.looksWallclock(i) {
			c.conv = convWallclock
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// optionUnit applies ReadOptions.ChannelUnits, ColumnUnits and Gauge to c.
func (r *Reader) optionUnit(c *column, colUnits map[string]dyno.Unit) error {
	u, ok := r.opts.ChannelUnits[c.ch]
	if cu, cok := colUnits[c.norm]; cok {
		u, ok = cu, true
	}
	if ok {
		if !c.ch.Accepts(u) {
			return &ParseError{File: r.name, Column: c.header, ColumnIndex: c.idx + 1,
				Err: fmt.Errorf("%w: unit %v given for channel %v does not measure it", ErrUnknownFormat, u, c.ch)}
		}
		c.unit, c.unitSrc, c.unitReason = u, "option", ""
	}
	if r.opts.Gauge.Has(c.ch) {
		c.gauge, c.unitSrc = true, "option"
	}
	return nil
}

// sourcePenalty ranks the dyno's own engine-speed pickup after the ECU's
// engine speed: an inductive pickup loses the signal (WinPEP8 logs show it
// falling to zero while the ECU's speed climbs), and the dyno derives its
// torque from it.
func (r *Reader) sourcePenalty(c *column) int {
	if c.ch != dyno.ChanRPM {
		return 0
	}
	if mod, _, ok := splitModule(c.norm); ok && (strings.HasPrefix(mod, "dwrt") || strings.HasPrefix(mod, "dwr ")) {
		return 1 << 20
	}
	return 0
}

// applyMappings applies ReadOptions.Map: each mapping names the column that
// feeds a channel (and cylinder), whatever the aliases say, and wins over
// every other candidate of that slot.
func (r *Reader) applyMappings(cols []*column) ([]*column, error) {
	for _, m := range r.opts.Map {
		if !m.Channel.Valid() || (m.Channel.PerCylinder() && (m.Cyl < AllCylinders || m.Cyl >= dyno.MaxCylinders)) {
			return nil, fmt.Errorf("%s: %w: mapping %+v", r.name, ErrBadAlias, m)
		}
		i, err := FindColumn(r.headers, m.Column)
		if err != nil {
			return nil, fmt.Errorf("%s: map %s: %w", r.name, channelSpec(m.Channel, m.Cyl), err)
		}
		cyl := m.Cyl
		if !m.Channel.PerCylinder() {
			cyl = 0
		}
		// The column now feeds only this channel.
		kept := cols[:0]
		for _, c := range cols {
			if c.idx != i {
				kept = append(kept, c)
			}
		}
		cols = kept
		c := &column{idx: i, header: r.headers[i], norm: NormalizeHeader(r.headers[i]), ch: m.Channel, cyl: cyl,
			rank: -1, alias: "map", forced: true, unit: m.Unit, health: dyno.HealthUnknown}
		if m.Unit != dyno.UnitAuto {
			c.unitSrc = "option"
		} else if _, u, ok := splitUnit(c.norm); ok {
			c.unit, c.unitSrc = u, "header"
		} else if i < len(r.units) {
			if u, ok := dyno.ParseUnit(r.units[i]); ok && u != dyno.UnitAuto {
				c.unit, c.unitSrc = u, "units row"
			}
		}
		if err := r.optionUnit(c, nil); err != nil {
			return nil, err
		}
		if m.Channel == dyno.ChanTime && r.looksWallclock(i) {
			c.conv = convWallclock
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// FindColumn finds the column a user named in headers: the header itself
// (compared after NormalizeHeader), or the one header holding every word
// of name ("LC2 AFR2" finds "(DWRT CPU) LC2 Volts Petrol AFR2"), or a
// 1-based column number written "#N". It says which headers come close
// when it finds none, and which compete when it finds several.
func FindColumn(headers []string, name string) (int, error) {
	if strings.HasPrefix(name, "#") {
		var n int
		if _, err := fmt.Sscanf(name, "#%d", &n); err == nil && n >= 1 && n <= len(headers) {
			return n - 1, nil
		}
		return 0, fmt.Errorf("no column %s: the log has %d columns", name, len(headers))
	}
	want := NormalizeHeader(name)
	if want == "" {
		return 0, fmt.Errorf("empty column name")
	}
	for i, h := range headers {
		if NormalizeHeader(h) == want || strings.EqualFold(strings.TrimSpace(h), strings.TrimSpace(name)) {
			return i, nil
		}
	}
	words := strings.Fields(want)
	var hits []int
	for i, h := range headers {
		n := NormalizeHeader(h)
		all := true
		for _, w := range words {
			if !containsWord(n, w) {
				all = false
				break
			}
		}
		if all {
			hits = append(hits, i)
		}
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return 0, fmt.Errorf("no column named %q (give the header as written, the words of one header, or #N)", name)
	}
	var names []string
	for _, i := range hits {
		names = append(names, fmt.Sprintf("%q", headers[i]))
	}
	return 0, fmt.Errorf("%q matches %d columns: %s; name one exactly", name, len(hits), strings.Join(names, ", "))
}

// containsWord reports whether w is in n, at word boundaries.
func containsWord(n, w string) bool {
	for off := 0; ; {
		i := strings.Index(n[off:], w)
		if i < 0 {
			return false
		}
		i += off
		before := i == 0 || !isWordByte(n[i-1])
		after := i+len(w) == len(n) || !isWordByte(n[i+len(w)])
		if before && after {
			return true
		}
		off = i + 1
	}
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b >= 0x80
}

// pickColumns chooses one column per channel and cylinder: a mapped column
// first, then the best-ranked column that is not dead. The measured AFR
// gets more care: per-cylinder widebands win when more than one is live;
// a single live wideband (a collector probe, one sensor on a multi-cylinder
// engine) is used as one combined AFR.
func (r *Reader) pickColumns(cols []*column) []*column {
	slots := map[int][]*column{}
	for _, c := range cols {
		if c.unusable != "" {
			continue
		}
		slots[c.slotKey()] = append(slots[c.slotKey()], c)
	}
	var chosen []*column
	for _, cands := range slots {
		sort.SliceStable(cands, func(i, j int) bool { return cands[i].rank < cands[j].rank })
		var pick *column
		for _, c := range cands {
			if c.forced || c.health != dyno.HealthDead {
				pick = c
				break
			}
		}
		for _, c := range cands {
			if c != pick && c.notUsed == "" && c.health != dyno.HealthDead {
				c.notUsed = fmt.Sprintf("%q is preferred", pick.header)
			}
		}
		if pick != nil {
			pick.used = true
			chosen = append(chosen, pick)
		}
	}
	chosen = r.pickWideband(chosen)
	sort.Slice(chosen, func(i, j int) bool {
		if chosen[i].ch != chosen[j].ch {
			return chosen[i].ch < chosen[j].ch
		}
		return chosen[i].cyl < chosen[j].cyl
	})
	return chosen
}

// pickWideband settles the measured AFR (and lambda) columns: per-cylinder
// when at least two widebands are live, otherwise the one live sensor is a
// combined AFR in slot 0.
func (r *Reader) pickWideband(chosen []*column) []*column {
	var perCyl, global []*column
	for _, c := range chosen {
		if c.ch != dyno.ChanAFR && c.ch != dyno.ChanLambda {
			continue
		}
		if c.cyl == AllCylinders {
			global = append(global, c)
		} else {
			perCyl = append(perCyl, c)
		}
	}
	forcedPer := false
	for _, c := range perCyl {
		forcedPer = forcedPer || c.forced
	}
	for _, g := range global {
		if (g.forced || g.user) && !forcedPer {
			// The caller named the one wideband to use (the collector
			// probe beside the log's dead per-cylinder channels).
			for _, c := range perCyl {
				c.used, c.notUsed = false, fmt.Sprintf("%q was named instead", g.header)
			}
			r.combined = true
			out := chosen[:0]
			for _, c := range chosen {
				if c.used {
					out = append(out, c)
				}
			}
			return out
		}
	}
	// Count sensors, not columns: an AFR and a lambda column of one slot
	// are one sensor.
	sensors := map[int]bool{}
	for _, c := range perCyl {
		sensors[c.cyl] = true
	}
	if len(global) > 0 {
		sensors[AllCylinders] = true
	}
	switch {
	case len(sensors) >= 2 || forcedPer:
		// Per-cylinder widebands; an all-cylinder one fills the cylinders
		// without their own column.
	case len(sensors) == 1:
		// One live sensor (a collector probe, or the one live input of a
		// pair) measures the engine as a whole.
		r.combined = true
	}
	return chosen
}

// makeBindings turns the chosen columns into the reader's bindings and
// layout, and decides which channels to derive.
func (r *Reader) makeBindings(chosen []*column) {
	cyls := 0
	for _, c := range chosen {
		if c.ch.PerCylinder() {
			cyls = max(cyls, c.cyl+1, 1)
		}
	}
	own := map[dyno.Channel]uint16{}
	for _, c := range chosen {
		if c.ch.PerCylinder() && c.cyl >= 0 {
			own[c.ch] |= 1 << c.cyl
		}
	}
	r.binds = r.binds[:0]
	var set dyno.ChannelSet
	for _, c := range chosen {
		b := binding{col: c.idx, header: c.header, alias: c.alias, ch: c.ch, cyl: c.cyl, unit: c.unit, conv: c.conv,
			guard: c.guard, lo: c.lo, hi: c.hi}
		if c.gauge {
			r.gauge = r.gauge.With(c.ch)
		}
		if b.cyl == AllCylinders {
			b.cylMask = (uint16(1)<<cyls - 1) &^ own[b.ch]
			if r.combined && (b.ch == dyno.ChanAFR || b.ch == dyno.ChanLambda) {
				b.cylMask = 1 // one sensor: slot 0 only
			}
		} else if r.combined && (b.ch == dyno.ChanAFR || b.ch == dyno.ChanLambda) {
			b.cyl = 0
		}
		set = set.With(c.ch)
		r.binds = append(r.binds, b)
	}
	// Time first; all-cylinder columns before the per-cylinder ones they
	// give way to.
	sort.SliceStable(r.binds, func(i, j int) bool {
		pi, pj := int(r.binds[i].ch)*2, int(r.binds[j].ch)*2
		if r.binds[i].cyl >= 0 {
			pi++
		}
		if r.binds[j].cyl >= 0 {
			pj++
		}
		if pi != pj {
			return pi < pj
		}
		return r.binds[i].col < r.binds[j].col
	})
	r.minField, r.timeBind = 0, -1
	for i := range r.binds {
		b := &r.binds[i]
		// The fast path takes the canonical unit as is and scales lambda
		// to AFR; every other conversion goes through assign.
		if b.ch != dyno.ChanTime && b.conv == convPlain && !r.gauge.Has(b.ch) {
			switch {
			case b.unit == dyno.UnitLambda && b.ch != dyno.ChanLambda:
				b.linear, b.mul = true, r.stoich
			case b.unit == dyno.CanonicalUnit(b.ch) || (b.ch == dyno.ChanLoad && b.unit != dyno.UnitPSI &&
				b.unit != dyno.UnitBar && b.unit != dyno.UnitInHg && b.unit != dyno.UnitMbar):
				b.linear, b.mul = true, 1
			}
		}
		r.minField = max(r.minField, b.col+1)
		if b.ch == dyno.ChanTime {
			r.timeBind = i
		}
		r.log.Debug("dynolog: column", "file", r.name, "header", b.header, "channel", b.ch.String(),
			"cyl", b.cyl, "unit", b.unit.String())
	}
	r.colBind = make([]int, r.minField)
	for i := range r.colBind {
		r.colBind[i] = -1
	}
	for i, b := range r.binds {
		r.colBind[b.col] = i
	}
	if !r.opts.NoDerive {
		if set.Has(dyno.ChanLambda) && !set.Has(dyno.ChanAFR) && cyls > 0 {
			r.derive.afr = true
			set = set.With(dyno.ChanAFR)
		} else if set.Has(dyno.ChanLambda) && cyls > 0 {
			r.derive.afr = true // fills cylinders whose AFR column is blank
		}
		if set.Has(dyno.ChanRPM) && set.Has(dyno.ChanPower) && !set.Has(dyno.ChanTorque) {
			r.derive.torque = true
			set = set.With(dyno.ChanTorque)
		} else if set.Has(dyno.ChanRPM) && set.Has(dyno.ChanTorque) && !set.Has(dyno.ChanPower) {
			r.derive.power = true
			set = set.With(dyno.ChanPower)
		}
	}
	if r.timeBind < 0 && r.opts.Period > 0 {
		set = set.With(dyno.ChanTime)
	}
	if r.combined {
		cyls = max(cyls, 1)
	}
	r.layout = dyno.Layout{Name: r.name, Format: r.format, Cylinders: cyls, Channels: set, CombinedAFR: r.combined}
}

// checkRequired refuses a log that lacks a required channel.
func (r *Reader) checkRequired() error {
	req := r.opts.Required
	if req == nil {
		req = []dyno.Channel{dyno.ChanRPM}
	}
	set := r.layout.Channels
	var missing []dyno.Channel
	for _, c := range req {
		if !set.Has(c) && !(c == dyno.ChanAFR && set.Has(dyno.ChanLambda)) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return &MissingColumnsError{File: r.name, Format: r.format, Missing: missing, Found: r.headers, Report: r.report}
	}
	return nil
}

// channelSpec writes a channel and cylinder the way ParseChannelSpec reads
// them: "rpm", "afr", "afr_f", "afr_3".
func channelSpec(c dyno.Channel, cyl int) string {
	s := c.String()
	if !c.PerCylinder() || cyl == AllCylinders {
		return s
	}
	switch cyl {
	case dyno.Front:
		return s + "_f"
	case dyno.Rear:
		return s + "_r"
	}
	return fmt.Sprintf("%s_%d", s, cyl+1)
}

// ParseChannelSpec reads a channel as users name it on command lines:
// "rpm", "map", "tps", "load", "ect", "iat", "afr" (every cylinder, one
// sensor), "afr_f", "afr_r" or "afr_1" ... "afr_8" (one cylinder), "target"
// or "afr_cmd", "lambda", "spark_f", "knock_r" and so on.
func ParseChannelSpec(spec string) (dyno.Channel, int, error) {
	s := strings.ToLower(strings.TrimSpace(spec))
	if c, ok := dyno.ParseChannel(s); ok {
		if c.PerCylinder() {
			return c, AllCylinders, nil
		}
		return c, 0, nil
	}
	if i := strings.LastIndexByte(s, '_'); i > 0 {
		base, suf := s[:i], s[i+1:]
		if c, ok := dyno.ParseChannel(base); ok && c.PerCylinder() {
			switch suf {
			case "f", "front":
				return c, dyno.Front, nil
			case "r", "rear":
				return c, dyno.Rear, nil
			}
			if len(suf) == 1 && suf[0] >= '1' && suf[0] <= '8' {
				return c, int(suf[0] - '1'), nil
			}
		}
	}
	return 0, 0, fmt.Errorf("unknown channel %q (want rpm, map, tps, load, afr, afr_f, afr_r, afr_1..8, target, lambda, spark_f, knock_r, iat, ect, baro, torque, power, time)", spec)
}
