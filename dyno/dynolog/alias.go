package dynolog

import (
	"strconv"
	"strings"

	"github.com/dynoai/dynoai/dyno"
)

// AllCylinders is the Alias.Cyl of a column that carries one value for every
// cylinder: a single wideband in the collector, one spark advance for the
// whole engine. Readers copy it into each cylinder slot of the layout that
// has no column of its own.
const AllCylinders = dyno.AllCylinders

// Alias maps one column name of a log to a logical channel. Readers hold an
// ordered list of aliases; for each channel and cylinder, the column matching
// the earliest alias wins.
//
// Name is compared after normalisation (see NormalizeHeader): case, '_' versus
// ' ', repeated spaces and the WinPEP8 module suffix ("(Harley - ECU Type 14
// SW Level 141)" becomes "(harley)") do not matter. A header that is not
// matched whole is tried without its module prefix, and then with a trailing
// unit split off ("MAP (psi)", "iat_c", "Torque [N·m]"): the rest must match
// an alias whose channel measures that unit's quantity.
type Alias struct {
	Name    string
	Channel dyno.Channel
	// Cyl is the cylinder slot (0 = front, 1 = rear) for per-cylinder
	// channels, or AllCylinders. It is ignored for other channels.
	Cyl int
	// Unit is the unit of the column's values; UnitAuto lets the header's
	// unit suffix, a units row, or the format's default decide.
	Unit dyno.Unit
}

// DefaultAliases returns the readers' built-in alias table, a fresh copy the
// caller may modify: the predecessor's NextGen normaliser table (jetstream-dyno
// spec §2.2.7), the WinPEP and generic/Power Vision loaders' candidates, the
// WinPEP8 module-qualified names, MegaLogViewer/TunerStudio names, JetDrive
// channel names and the canonical names CSVWriter writes.
//
// Deliberate departures from the predecessor: "time" is seconds (every real
// log with that column uses seconds); a bare "o2" is not AFR (ECU logs use it
// for narrowband volts); lambda columns are converted to AFR rather than
// taken as AFR.
func DefaultAliases() []Alias {
	out := make([]Alias, len(defaultAliases))
	copy(out, defaultAliases)
	return out
}

var defaultAliases = buildDefaultAliases()

func buildDefaultAliases() []Alias {
	var t []Alias
	add := func(c dyno.Channel, cyl int, u dyno.Unit, names ...string) {
		for _, n := range names {
			t = append(t, Alias{Name: n, Channel: c, Cyl: cyl, Unit: u})
		}
	}
	const all = AllCylinders
	add(dyno.ChanTime, 0, dyno.UnitSeconds, "time s", "time", "timestamp", "time sec", "elapsed s", "seconds", "elapsed",
		"offset")
	add(dyno.ChanTime, 0, dyno.UnitMillis, "time ms", "timestamp ms", "t ms", "elapsed ms", "time(ms)")

	add(dyno.ChanRPM, 0, dyno.UnitAuto, "rpm", "engine rpm", "engine speed (rpm)", "enginespeed", "engine speed", "engspeed", "engspeed (rpm)",
		"(pv) engine speed", "(harley) engine speed", "(dwrt cpu) engine rpm", "(dwr cpu) engine rpm", "n")
	add(dyno.ChanMAP, 0, dyno.UnitAuto, "map kpa", "map", "manifold absolute pressure", "manifold pressure", "map (kpa)",
		"(pv) manifold absolute pressure", "(harley) manifold absolute pressure", "boost kpa", "intake pressure",
		"intake manifold absolute pressure", "manifold absolute pressure sensor", "map sensor")
	add(dyno.ChanTPS, 0, dyno.UnitAuto, "tps", "throttle", "throttle position", "tp", "throttle %", "throttle%",
		"(pv) throttle position", "(harley) throttle position", "throttle (%)",
		"accelerator pedal position", "tps %", "throttle angle")
	add(dyno.ChanLoad, 0, dyno.UnitAuto, "load", "fuelload", "fuel load", "tbl indx", "engine load", "fuel load kpa")

	add(dyno.ChanTorque, 0, dyno.UnitAuto, "torque", "tq", "engine torque", "wheel torque",
		"(dwrt cpu) torque", "(dwr cpu) torque", "(dwrt cpu) torque drum 1", "(pv) torque")
	add(dyno.ChanTorque, 0, dyno.UnitFtLb, "ft lb")
	add(dyno.ChanTorque, 0, dyno.UnitNm, "nm")
	add(dyno.ChanPower, 0, dyno.UnitAuto, "hp", "horsepower", "power", "engine hp",
		"(dwrt cpu) power", "(dwr cpu) power", "(dwrt cpu) power drum 1", "(pv) horsepower", "(pv) power")

	add(dyno.ChanIAT, 0, dyno.UnitAuto, "iat", "intake air temp", "intake air temperature", "air temp", "inlet temp", "mat",
		"intake air temp", "(pv) intake air temperature", "(harley) intake air temperature")
	add(dyno.ChanECT, 0, dyno.UnitAuto, "ect", "coolant temp", "engine temp", "engine temperature", "et", "water temp", "clt",
		"coolant", "(pv) engine temperature", "(harley) engine temperature", "engine coolant temp", "engine coolant temperature",
		"coolant temperature", "clt f")
	add(dyno.ChanBaro, 0, dyno.UnitAuto, "baro", "barometer", "baro pressure", "barometric pressure", "atmospheric pressure",
		"ambient pressure", "(dwrt atmo) pressure", "(dwr atmo) pressure")

	add(dyno.ChanDrumSpeed, 0, dyno.UnitAuto, "drum speed", "roller speed", "(dwrt cpu) speed", "(dwrt cpu) speed 1")
	add(dyno.ChanDrumForce, 0, dyno.UnitAuto, "drum force", "force drum 1", "(dwrt cpu) force drum 1", "(dwrt cpu) force")

	perCyl := func(c dyno.Channel, u dyno.Unit, front, rear, global []string, numbered ...string) {
		add(c, dyno.Front, u, front...)
		add(c, dyno.Rear, u, rear...)
		for _, p := range numbered {
			for i := 1; i <= dyno.MaxCylinders; i++ {
				add(c, i-1, u, p+" "+strconv.Itoa(i))
			}
		}
		add(c, all, u, global...)
	}
	// The canonical names CSVWriter writes state their unit exactly.
	explicit := func(c dyno.Channel, u dyno.Unit, prefix string) {
		add(c, dyno.Front, u, prefix+" f")
		add(c, dyno.Rear, u, prefix+" r")
		for i := 1; i <= dyno.MaxCylinders; i++ {
			add(c, i-1, u, prefix+" "+strconv.Itoa(i))
		}
	}
	explicit(dyno.ChanAFR, dyno.UnitAFR, "afr meas")
	explicit(dyno.ChanAFRCommanded, dyno.UnitAFR, "afr cmd")
	explicit(dyno.ChanLambda, dyno.UnitLambda, "lambda")
	perCyl(dyno.ChanAFR, dyno.UnitAuto,
		[]string{"afr meas f", "afr meas front", "wbo2 f", "wbo2 afr front", "afr f", "afr front", "measured afr f",
			"wb afr f", "o2 f", "afr measured f", "(pv) wbo2 afr front", "(harley) wbo2 afr front", "air/fuel ratio 1", "wb-afr1"},
		[]string{"afr meas r", "afr meas rear", "wbo2 r", "wbo2 afr rear", "afr r", "afr rear", "measured afr r",
			"wb afr r", "o2 r", "afr measured r", "(pv) wbo2 afr rear", "(harley) wbo2 afr rear", "air/fuel ratio 2", "wb-afr2"},
		[]string{"afr meas", "afr measured", "measured afr", "afr", "wbo2", "air fuel ratio", "air/fuel ratio",
			"(pv) afr meas", "wideband afr", "lc1 volts petrol afr", "lc2 volts petrol afr2", "lc1 afr", "lc2 afr",
			"lc-1 afr", "lc-2 afr", "wideband", "wb afr", "wb o2", "air-fuel ratio"},
		"afr meas")
	perCyl(dyno.ChanLambda, dyno.UnitAuto,
		[]string{"lambda f", "lambda front", "(pv) at lambda 1", "at lambda 1", "lambda1"},
		[]string{"lambda r", "lambda rear", "(pv) at lambda 2", "at lambda 2", "lambda2"},
		[]string{"lambda", "lambda meas", "measured lambda"},
		"lambda")
	perCyl(dyno.ChanAFRCommanded, dyno.UnitAuto,
		[]string{"afr cmd f", "cmd afr f", "afr target f", "commanded afr f"},
		[]string{"afr cmd r", "cmd afr r", "afr target r", "commanded afr r"},
		[]string{"afr cmd", "afr target", "commanded afr", "target afr", "desired air/fuel", "desired afr", "afr commanded",
			"(pv) desired air/fuel", "(harley) desired air/fuel", "afr target 1", "afrtrgt1", "afrtrgt", "afr trgt",
			"afrtgt", "afr tgt", "air-fuel ratio commanded", "afr target1", "target air/fuel"},
		"afr cmd")
	perCyl(dyno.ChanAFRCommanded, dyno.UnitLambda,
		[]string{"lambda target f"}, []string{"lambda target r"},
		[]string{"lambda target", "set lambda", "target lambda", "equivalence ratio commanded", "lambda commanded",
			"commanded lambda"})
	perCyl(dyno.ChanAFRCommanded, dyno.UnitAuto, nil, nil, []string{"desired lambda", "(pv) desired lambda"})
	perCyl(dyno.ChanSpark, dyno.UnitDegrees,
		[]string{"spark f", "advance f", "timing f", "spark adv f", "ignition f", "ign f", "spark advance front",
			"(pv) spark advance front", "(harley) spark advance front", "spark1"},
		[]string{"spark r", "advance r", "timing r", "spark adv r", "ignition r", "ign r", "spark advance rear",
			"(pv) spark advance rear", "(harley) spark advance rear", "spark2"},
		[]string{"spark", "advance", "timing", "spark adv", "ignition", "ign", "spark advance", "ignition timing",
			"spk: spark advance", "advance current", "sparkadv", "timing advance", "ignition advance"},
		"spark")
	perCyl(dyno.ChanKnock, dyno.UnitDegrees,
		[]string{"knock f", "knock ret f", "knock front", "kr f", "spark retard f", "front spark knock retard",
			"(pv) front spark knock retard", "(harley) front spark knock retard"},
		[]string{"knock r", "knock ret r", "knock rear", "kr r", "spark retard r", "rear spark knock retard",
			"(pv) rear spark knock retard", "(harley) rear spark knock retard"},
		[]string{"knock", "knock retard", "kr", "spk: knock retard", "knockret"},
		"knock")
	for i := range t {
		t[i].Name = NormalizeHeader(t[i].Name)
	}
	return t
}

// NormalizeHeader returns the form in which header names are compared:
// surrounding spaces, quotes and a byte-order mark removed, lower case, '_'
// replaced by ' ', runs of spaces collapsed, and a leading WinPEP8 module
// "(Harley - ECU Type 14 SW Level 141)" shortened to its first part
// "(harley)".
func NormalizeHeader(h string) string {
	h = strings.TrimPrefix(h, "\ufeff")
	h = strings.TrimSpace(h)
	h = strings.Trim(h, "\"")
	h = strings.ToLower(h)
	var b strings.Builder
	b.Grow(len(h))
	space := false
	for _, r := range h {
		if r == '_' || r == ' ' || r == '\t' {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	h = b.String()
	if mod, rest, ok := splitModule(h); ok {
		if i := strings.Index(mod, " - "); i >= 0 {
			mod = mod[:i]
		}
		h = "(" + mod + ") " + rest
	}
	return h
}

// splitModule splits "(module) name" into module and name.
func splitModule(h string) (mod, rest string, ok bool) {
	if !strings.HasPrefix(h, "(") {
		return "", h, false
	}
	i := strings.IndexByte(h, ')')
	if i < 0 || i+1 >= len(h) {
		return "", h, false
	}
	rest = strings.TrimSpace(h[i+1:])
	if rest == "" {
		return "", h, false
	}
	return strings.TrimSpace(h[1:i]), rest, true
}

// splitUnit splits a trailing unit off a normalised header: "map (psi)",
// "map [kpa]", "iat c", "torque nm". ok is false when there is none.
func splitUnit(h string) (base string, u dyno.Unit, ok bool) {
	if n := len(h); n > 2 && (h[n-1] == ')' || h[n-1] == ']') {
		open := byte('(')
		if h[n-1] == ']' {
			open = '['
		}
		if i := strings.LastIndexByte(h, open); i > 0 {
			if u, ok := dyno.ParseUnit(h[i+1 : n-1]); ok {
				return strings.TrimRight(h[:i], " ,:-/"), u, true
			}
		}
	}
	if i := strings.LastIndexByte(h, ' '); i > 0 {
		if u, ok := dyno.ParseUnit(h[i+1:]); ok {
			return strings.TrimRight(h[:i], " ,:-/"), u, true
		}
	}
	return "", dyno.UnitAuto, false
}

// ColumnMatch is how one header matched an alias.
type ColumnMatch struct {
	Alias Alias // the alias that matched, with its normalised Name
	// Unit is the unit stated by the alias or, failing that, by the header
	// ("MAP (psi)"); UnitAuto when neither says.
	Unit dyno.Unit
	// Rank orders competing matches for one channel and cylinder: lower wins.
	Rank int
}

// MatchHeader finds the alias that header matches, trying aliases in order:
// first the whole normalised header, then without its module prefix, then
// with a trailing unit split off (accepted only when the alias's channel
// measures that unit's quantity).
func MatchHeader(header string, aliases []Alias) (ColumnMatch, bool) {
	return matchNormalized(NormalizeHeader(header), aliases)
}

// match ranks: alias index dominates; within one alias an explicit unit
// beats none, then the kind of match.
func matchNormalized(h string, aliases []Alias) (ColumnMatch, bool) {
	if h == "" {
		return ColumnMatch{}, false
	}
	best := ColumnMatch{Rank: -1}
	try := func(name string, u dyno.Unit, step int) {
		for i, a := range aliases {
			if a.Name != name {
				continue
			}
			if u != dyno.UnitAuto && !a.Channel.Accepts(u) {
				continue
			}
			unit := a.Unit
			if u != dyno.UnitAuto {
				unit = u
			}
			explicit := 1
			if unit != dyno.UnitAuto {
				explicit = 0
			}
			rank := i*8 + explicit*4 + step
			if best.Rank < 0 || rank < best.Rank {
				best = ColumnMatch{Alias: a, Unit: unit, Rank: rank}
			}
			return
		}
	}
	h = strings.TrimSuffix(h, " (sae)") // HP Tuners' standard PIDs: "engine rpm (sae)"
	try(h, dyno.UnitAuto, 0)
	bare := h
	if _, rest, ok := splitModule(h); ok {
		bare = rest
		try(bare, dyno.UnitAuto, 1)
	}
	if base, u, ok := splitUnit(bare); ok {
		try(base, u, 2)
	}
	if best.Rank < 0 {
		return ColumnMatch{}, false
	}
	return best, true
}
