package ve

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// dynoai3Record is one row as the predecessor's toolkit loads it; NaN is
// its None.
type dynoai3Record struct {
	rpm, kpa, tq, hp, tps, iat     float64
	afrCmd, afrMeas, afrErr, knock [2]float64
}

// dynoai3Log is what the toolkit's loaders return.
type dynoai3Log struct {
	format  string // "winpep", "generic" or "powervision"
	records []dynoai3Record
	hasHP   bool
}

// CompatError is an error of the compatibility loader, with the predecessor's
// message and the place it concerns.
type CompatError struct {
	Name string
	Line int
	Msg  string
}

func (e *CompatError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Name, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Name, e.Msg)
}

// compatFloat is the toolkit's safe_float: Python float() of the trimmed
// text, with NaN and infinities (and anything unparsable) as None.
func compatFloat(s string) float64 {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s, "xXpP") {
		return math.NaN()
	}
	if strings.Contains(s, "_") {
		// Python accepts single underscores between digits.
		if strings.HasPrefix(s, "_") || strings.HasSuffix(s, "_") || strings.Contains(s, "__") {
			return math.NaN()
		}
		s = strings.ReplaceAll(s, "_", "")
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) {
		return math.NaN()
	}
	return v
}

// detectDynoAI3Format scores the header line as the toolkit does (§1.2).
func detectDynoAI3Format(first string) string {
	line := strings.ToLower(strings.ReplaceAll(first, "\t", ","))
	parts := strings.Split(line, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	line = strings.Join(parts, ",")
	score := func(markers ...string) int {
		n := 0
		for _, m := range markers {
			if strings.Contains(line, m) {
				n++
			}
		}
		return n
	}
	w := score("timestamp", "rpm", "map", "kpa", "afr cmd", "afr meas", "knock")
	g := score("engspeed (rpm)", "afr measured", "time (s)", "throttle (%)")
	p := score("(harley - ecu", "(pv) engine speed", "(dwr cpu) torque", "(pv) wbo2 afr front")
	switch {
	case w == 0 && g == 0 && p == 0:
		return "unknown"
	case w >= g && w >= p:
		return "winpep"
	case g >= p:
		return "generic"
	}
	return "powervision"
}

// findColumn is the toolkit's two-pass header matcher (§1.3): an exact pass
// with candidates outermost, then a substring pass with headers outermost.
// It returns the index of the header, or -1.
func findColumn(norm []string, cands ...string) int {
	for _, c := range cands {
		for i, h := range norm {
			if h == c {
				return i
			}
		}
	}
	for i, h := range norm {
		for _, c := range cands {
			if strings.Contains(h, c) {
				return i
			}
		}
	}
	return -1
}

// dictIndex maps a matched header to the column Python's DictReader would
// read for it: with duplicated names the last column wins.
func dictIndex(headers []string, i int) int {
	if i < 0 {
		return -1
	}
	last := i
	for j := i + 1; j < len(headers); j++ {
		if headers[j] == headers[i] {
			last = j
		}
	}
	return last
}

func sniffDynoAI3Delimiter(sample []string) string {
	if len(sample) == 0 {
		return ","
	}
	for _, d := range []string{",", "\t", ";"} {
		n := strings.Count(sample[0], d)
		if n == 0 {
			continue
		}
		ok := true
		for _, l := range sample[1:] {
			if strings.TrimSpace(l) != "" && strings.Count(l, d) != n {
				ok = false
				break
			}
		}
		if ok {
			return d
		}
	}
	return ","
}

func decodeText(data []byte) string {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if utf8.Valid(data) {
		return string(data)
	}
	// cp1252 fallback for the header text: map bytes to runes one to one
	// (Latin-1 covers what matters in headers: °).
	r := make([]rune, len(data))
	for i, b := range data {
		r[i] = rune(b)
	}
	return string(r)
}

// splitCSVLine splits a line on delim honouring double quotes.
func splitCSVLine(line, delim string) []string {
	if !strings.Contains(line, `"`) {
		return strings.Split(line, delim)
	}
	var out []string
	var cur strings.Builder
	inQ := false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '"' && inQ && i+1 < len(line) && line[i+1] == '"':
			cur.WriteByte('"')
			i++
		case ch == '"':
			inQ = !inQ
		case !inQ && strings.HasPrefix(line[i:], delim):
			out = append(out, cur.String())
			cur.Reset()
			i += len(delim) - 1
		default:
			cur.WriteByte(ch)
		}
	}
	return append(out, cur.String())
}

// loadDynoAI3 reads a log the way the toolkit's loaders do (§1.2-1.5).
func loadDynoAI3(r io.Reader, name string) (*dynoai3Log, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("ve: reading %s: %w", name, err)
	}
	text := decodeText(data)
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var lines []string
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, &CompatError{Name: name, Line: len(lines) + 1, Msg: err.Error()}
	}
	if len(lines) == 0 {
		return nil, &CompatError{Name: name, Msg: "empty file"}
	}
	format := detectDynoAI3Format(lines[0])
	switch format {
	case "generic", "powervision":
		return loadDynoAI3Generic(lines, name, format)
	}
	log, err := loadDynoAI3WinPEP(lines, name)
	if err != nil && format == "unknown" {
		return nil, &CompatError{Name: name, Msg: "format not recognized: " + err.Error()}
	}
	return log, err
}

func loadDynoAI3WinPEP(lines []string, name string) (*dynoai3Log, error) {
	sample := lines[:min(len(lines), 20)]
	delim := sniffDynoAI3Delimiter(sample)
	headers := splitCSVLine(lines[0], delim)
	norm := make([]string, len(headers))
	for i, h := range headers {
		norm[i] = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(h)), "_", " ")
	}
	col := func(c ...string) int { return dictIndex(headers, findColumn(norm, c...)) }
	rpm, kpa, tq := col("rpm"), col("map", "kpa"), col("torque")
	var missing []string
	for _, m := range []struct {
		idx  int
		name string
	}{{rpm, "RPM"}, {kpa, "MAP"}, {tq, "Torque"}} {
		if m.idx < 0 {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		quoted := make([]string, len(headers))
		for i, h := range headers {
			quoted[i] = "'" + h + "'"
		}
		return nil, &CompatError{Name: name, Line: 1, Msg: fmt.Sprintf(
			"Missing required columns in WinPEP CSV: %s; available columns: %s",
			strings.Join(missing, ", "), strings.Join(quoted, ", "))}
	}
	cmdF := col("afr cmd f", "cmd afr f", "afr target f", "commanded afr f")
	cmdR := col("afr cmd r", "cmd afr r", "afr target r", "commanded afr r")
	measF := col("afr meas f", "afr f", "measured afr f", "wb afr f", "o2 f")
	measR := col("afr meas r", "afr r", "measured afr r", "wb afr r", "o2 r")
	knF := col("knock ret f", "knock f", "spark retard f")
	knR := col("knock ret r", "knock r", "spark retard r")
	iat := col("iat", "intake air")
	tps := col("tps", "throttle")
	hp := col("hp", "horsepower")

	out := &dynoai3Log{format: "winpep", hasHP: hp >= 0}
	for _, line := range lines[1:] {
		if line == "" {
			continue
		}
		cells := splitCSVLine(line, delim)
		get := func(i int) float64 {
			if i < 0 || i >= len(cells) {
				return math.NaN()
			}
			return compatFloat(cells[i])
		}
		rec := dynoai3Record{rpm: get(rpm), kpa: get(kpa), tq: get(tq)}
		if math.IsNaN(rec.rpm) || math.IsNaN(rec.kpa) || math.IsNaN(rec.tq) {
			continue
		}
		rec.hp, rec.tps, rec.iat = get(hp), get(tps), get(iat)
		rec.afrCmd = [2]float64{get(cmdF), get(cmdR)}
		rec.afrMeas = [2]float64{get(measF), get(measR)}
		rec.knock = [2]float64{get(knF), get(knR)}
		for c := range 2 {
			rec.afrErr[c] = math.NaN()
			if cmd, meas := rec.afrCmd[c], rec.afrMeas[c]; !math.IsNaN(cmd) && !math.IsNaN(meas) && meas > 0 {
				rec.afrErr[c] = (cmd - meas) / meas * 100
			}
		}
		out.records = append(out.records, rec)
	}
	return out, nil
}

const compatStoich = 14.57

func compatInvalidAFR(v float64) bool {
	return math.IsNaN(v) || v < 9 || v > 18 || math.Abs(v-5.1) < 1e-6
}

func loadDynoAI3Generic(lines []string, name, format string) (*dynoai3Log, error) {
	headers := splitCSVLine(lines[0], ",")
	norm := make([]string, len(headers))
	for i, h := range headers {
		norm[i] = strings.ToLower(strings.TrimSpace(h))
	}
	// The generic loader lower-cases headers but does not replace "_".
	col := func(c ...string) int { return dictIndex(norm, findColumn(norm, c...)) }
	rpm := col("engine speed", "engspeed (rpm)", "(pv) engine speed", "(harley - ecu type 22 sw level 621) engine speed", "rpm")
	kpa := col("manifold absolute pressure", "map (kpa)", "(pv) manifold absolute pressure", "(harley - ecu type 22 sw level 621) manifold absolute pressure", "map", "map kpa")
	tq := col("torque", "(dwr cpu) torque", "(dwrt cpu) torque", "(dwrt cpu) torque drum 1", "(dwrt cpu) torque (uncorrected)", "(pv) torque", "engine torque")
	hp := col("horsepower", "hp", "(pv) horsepower", "(pv) power")
	cmd := col("desired air/fuel", "afr commanded", "desired afr", "afr target", "commanded afr")
	meas := col("wbo2 afr front", "afr measured", "measured afr", "(pv) wbo2 afr front", "(pv) afr meas")
	iat := col("intake air temperature", "iat (°f)", "iat")
	tps := col("throttle position", "throttle (%)", "tps")
	var lambdas, lambdaTargets []int
	for i, h := range norm {
		if strings.Contains(h, "lambda") {
			lambdas = append(lambdas, i)
			if strings.Contains(h, "desired") || strings.Contains(h, "target") || strings.Contains(h, "cmd") {
				lambdaTargets = append(lambdaTargets, i)
			}
		}
	}
	var missing []string
	if rpm < 0 {
		missing = append(missing, "RPM")
	}
	if kpa < 0 {
		missing = append(missing, "MAP")
	}
	if tq < 0 && hp < 0 {
		missing = append(missing, "Torque/HP")
	}
	if len(missing) > 0 {
		return nil, &CompatError{Name: name, Line: 1, Msg: "Missing required columns for generic format: " +
			strings.Join(missing, ", ") + "; available columns: " + strings.Join(headers, ", ")}
	}
	out := &dynoai3Log{format: format, hasHP: hp >= 0}
	for _, line := range lines[1:] {
		if line == "" {
			continue
		}
		cells := strings.Split(line, ",")
		get := func(i int) float64 {
			if i < 0 || i >= len(cells) {
				return math.NaN()
			}
			return compatFloat(cells[i])
		}
		rec := dynoai3Record{rpm: get(rpm), kpa: get(kpa)}
		if math.IsNaN(rec.rpm) || math.IsNaN(rec.kpa) || rec.rpm < 400 || rec.rpm > 8000 || rec.kpa < 10 || rec.kpa > 110 {
			continue
		}
		rec.tq, rec.hp = get(tq), get(hp)
		if math.IsNaN(rec.tq) && !math.IsNaN(rec.hp) && rec.rpm > 0 {
			rec.tq = rec.hp * 5252 / rec.rpm
		}
		m, c := get(meas), get(cmd)
		fromLambda := func(cols []int) float64 {
			for _, i := range cols {
				if l := get(i); !math.IsNaN(l) && l >= 0.6 && l <= 1.3 {
					return l * compatStoich
				}
			}
			return math.NaN()
		}
		if compatInvalidAFR(m) {
			if v := fromLambda(lambdas); !math.IsNaN(v) {
				m = v
			}
		}
		if compatInvalidAFR(c) {
			if v := fromLambda(lambdaTargets); !math.IsNaN(v) {
				c = v
			}
		}
		e := math.NaN()
		if !math.IsNaN(c) && !math.IsNaN(m) && m > 0 {
			e = (c - m) / m * 100
		}
		if math.IsNaN(rec.tq) {
			continue
		}
		rec.tps, rec.iat = get(tps), get(iat)
		rec.afrCmd = [2]float64{c, c}
		rec.afrMeas = [2]float64{m, m}
		rec.afrErr = [2]float64{e, e}
		rec.knock = [2]float64{0, 0}
		out.records = append(out.records, rec)
	}
	return out, nil
}
