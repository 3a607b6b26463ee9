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
	batt                           float64
	afrCmd, afrMeas, afrErr, knock [2]float64
}

// dynoai3Header is what a toolkit loader learns from a log's header.
type dynoai3Header struct {
	format string // "winpep", "generic" or "powervision"
	hasHP  bool
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

// The toolkit decodes a log as UTF-8 when the whole file is valid UTF-8
// (after a byte-order mark), and byte for byte as Latin-1 (cp1252 for what
// matters in headers: °) otherwise. The choice depends on the whole file, so
// a seekable log is checked in a first pass that holds nothing, then read
// line by line in a second.

var utf8BOM = []byte("\xef\xbb\xbf")

// skipBOM consumes a UTF-8 byte-order mark at the start of br.
func skipBOM(br *bufio.Reader) error {
	head, err := br.Peek(3)
	if bytes.Equal(head, utf8BOM) {
		_, err = br.Discard(3)
		return err
	}
	if err == io.EOF || err == bufio.ErrBufferFull {
		return nil
	}
	return err
}

// validUTF8 reports whether everything r yields is valid UTF-8, reading it
// in chunks.
func validUTF8(r io.Reader) (bool, error) {
	buf := make([]byte, 1<<20)
	carry := 0
	for {
		n, err := r.Read(buf[carry:])
		data := buf[:carry+n]
		cut := len(data)
		if err == nil {
			// A rune cut by the chunk's end is checked with the next.
			for i := len(data) - 1; i >= 0 && i >= len(data)-utf8.UTFMax; i-- {
				if utf8.RuneStart(data[i]) {
					if !utf8.FullRune(data[i:]) {
						cut = i
					}
					break
				}
			}
		}
		if !utf8.Valid(data[:cut]) {
			return false, nil
		}
		carry = copy(buf, data[cut:])
		switch {
		case err == io.EOF:
			return true, nil
		case err != nil:
			return false, err
		}
	}
}

// latin1 maps each byte of b to the rune of the same number.
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// dynoai3Lines yields a log's lines, decoded as the toolkit decodes them,
// without the line ends.
type dynoai3Lines struct {
	sc     *bufio.Scanner
	latin1 bool
	n      int // lines yielded
}

func (l *dynoai3Lines) next() (string, bool) {
	if !l.sc.Scan() {
		return "", false
	}
	l.n++
	b := bytes.TrimRight(l.sc.Bytes(), "\r")
	if l.latin1 {
		return latin1(b), true
	}
	return string(b), true
}

// seekable returns r as an io.ReadSeeker (reading a reader that is not
// one into memory) and the offset it starts at.
func seekable(r io.Reader, name string) (io.ReadSeeker, int64, error) {
	rs, ok := r.(io.ReadSeeker)
	if !ok {
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, 0, fmt.Errorf("ve: reading %s: %w", name, err)
		}
		rs = bytes.NewReader(data)
	}
	start, err := rs.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, fmt.Errorf("ve: reading %s: %w", name, err)
	}
	return rs, start, nil
}

// openDynoAI3Lines prepares r to be read line by line. A reader that is not
// an io.ReadSeeker is read into memory first (the whole file decides the
// decoding).
func openDynoAI3Lines(r io.Reader, name string) (*dynoai3Lines, error) {
	rs, start, err := seekable(r, name)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rs, 64<<10)
	if err := skipBOM(br); err != nil {
		return nil, fmt.Errorf("ve: reading %s: %w", name, err)
	}
	valid, err := validUTF8(br)
	if err != nil {
		return nil, fmt.Errorf("ve: reading %s: %w", name, err)
	}
	if _, err := rs.Seek(start, io.SeekStart); err != nil {
		return nil, fmt.Errorf("ve: reading %s: %w", name, err)
	}
	br.Reset(rs)
	if err := skipBOM(br); err != nil {
		return nil, fmt.Errorf("ve: reading %s: %w", name, err)
	}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), 1<<24)
	return &dynoai3Lines{sc: sc, latin1: !valid}, nil
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

// scanDynoAI3 reads a log the way the toolkit's loaders do (§1.2-1.5),
// calling visit for each record it keeps, in order, without holding them.
// header, when set, is called with the header before the first record.
func scanDynoAI3(r io.Reader, name string, visit func(*dynoai3Record), header func(dynoai3Header)) (dynoai3Header, error) {
	lines, err := openDynoAI3Lines(r, name)
	if err != nil {
		return dynoai3Header{}, err
	}
	// The first 20 lines decide the WinPEP delimiter; they are records too.
	var head []string
	for len(head) < 20 {
		line, ok := lines.next()
		if !ok {
			break
		}
		head = append(head, line)
	}
	more := func() (string, bool) { return lines.next() }
	check := func() error {
		if err := lines.sc.Err(); err != nil {
			return &CompatError{Name: name, Line: lines.n + 1, Msg: err.Error()}
		}
		return nil
	}
	if err := check(); err != nil {
		return dynoai3Header{}, err
	}
	if len(head) == 0 {
		return dynoai3Header{}, &CompatError{Name: name, Msg: "empty file"}
	}
	format := detectDynoAI3Format(head[0])
	var h dynoai3Header
	switch format {
	case "generic", "powervision":
		h, err = scanDynoAI3Generic(head, more, name, format, visit, header)
	default:
		h, err = scanDynoAI3WinPEP(head, more, name, visit, header)
		if err != nil && format == "unknown" {
			return h, &CompatError{Name: name, Msg: "format not recognized: " + err.Error()}
		}
	}
	if err != nil {
		return h, err
	}
	return h, check()
}

// records yields head's lines after the header, then more's.
func records(head []string, more func() (string, bool), each func(string)) {
	for _, line := range head[1:] {
		each(line)
	}
	for line, ok := more(); ok; line, ok = more() {
		each(line)
	}
}

func scanDynoAI3WinPEP(head []string, more func() (string, bool), name string, visit func(*dynoai3Record), header func(dynoai3Header)) (dynoai3Header, error) {
	delim := sniffDynoAI3Delimiter(head)
	headers := splitCSVLine(head[0], delim)
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
		return dynoai3Header{}, &CompatError{Name: name, Line: 1, Msg: fmt.Sprintf(
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
	batt := col("battery", "vbatt", "voltage")
	tps := col("tps", "throttle")
	hp := col("hp", "horsepower")

	out := dynoai3Header{format: "winpep", hasHP: hp >= 0}
	if header != nil {
		header(out)
	}
	var rec dynoai3Record
	records(head, more, func(line string) {
		if line == "" {
			return
		}
		cells := splitCSVLine(line, delim)
		get := func(i int) float64 {
			if i < 0 || i >= len(cells) {
				return math.NaN()
			}
			return compatFloat(cells[i])
		}
		rec = dynoai3Record{rpm: get(rpm), kpa: get(kpa), tq: get(tq)}
		if math.IsNaN(rec.rpm) || math.IsNaN(rec.kpa) || math.IsNaN(rec.tq) {
			return
		}
		rec.hp, rec.tps, rec.iat, rec.batt = get(hp), get(tps), get(iat), get(batt)
		rec.afrCmd = [2]float64{get(cmdF), get(cmdR)}
		rec.afrMeas = [2]float64{get(measF), get(measR)}
		rec.knock = [2]float64{get(knF), get(knR)}
		for c := range 2 {
			rec.afrErr[c] = math.NaN()
			if cmd, meas := rec.afrCmd[c], rec.afrMeas[c]; !math.IsNaN(cmd) && !math.IsNaN(meas) && meas > 0 {
				rec.afrErr[c] = (cmd - meas) / meas * 100
			}
		}
		visit(&rec)
	})
	return out, nil
}

const compatStoich = 14.57

func compatInvalidAFR(v float64) bool {
	return math.IsNaN(v) || v < 9 || v > 18 || math.Abs(v-5.1) < 1e-6
}

func scanDynoAI3Generic(head []string, more func() (string, bool), name, format string, visit func(*dynoai3Record), header func(dynoai3Header)) (dynoai3Header, error) {
	headers := splitCSVLine(head[0], ",")
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
	batt := col("battery voltage", "battery (v)", "vbatt")
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
		return dynoai3Header{}, &CompatError{Name: name, Line: 1, Msg: "Missing required columns for generic format: " +
			strings.Join(missing, ", ") + "; available columns: " + strings.Join(headers, ", ")}
	}
	out := dynoai3Header{format: format, hasHP: hp >= 0}
	if header != nil {
		header(out)
	}
	var rec dynoai3Record
	records(head, more, func(line string) {
		if line == "" {
			return
		}
		cells := strings.Split(line, ",")
		get := func(i int) float64 {
			if i < 0 || i >= len(cells) {
				return math.NaN()
			}
			return compatFloat(cells[i])
		}
		rec = dynoai3Record{rpm: get(rpm), kpa: get(kpa)}
		if math.IsNaN(rec.rpm) || math.IsNaN(rec.kpa) || rec.rpm < 400 || rec.rpm > 8000 || rec.kpa < 10 || rec.kpa > 110 {
			return
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
			return
		}
		rec.tps, rec.iat, rec.batt = get(tps), get(iat), get(batt)
		rec.afrCmd = [2]float64{c, c}
		rec.afrMeas = [2]float64{m, m}
		rec.afrErr = [2]float64{e, e}
		rec.knock = [2]float64{0, 0}
		visit(&rec)
	})
	return out, nil
}
