package dynolog

// A streaming decoder for EFI Analytics' binary log format ("MLVLG", .mlg),
// versions 1 and 2, as written by TunerStudio, MegaLogViewer, Speeduino and
// rusEFI. All numbers are big-endian.
//
//	file header, v2 (24 bytes)          v1 (22 bytes)
//	  0  "MLVLG\0"                        the same, except that
//	  6  u16 format version (1 or 2)      info data start is a u16 at 12,
//	  8  u32 timestamp (Unix seconds)     so the rest moves 2 bytes up:
//	 12  u32 info data start              data begin u32 at 14,
//	 16  u32 data begin index             record length u16 at 18,
//	 20  u16 record length                field count u16 at 20
//	 22  u16 number of fields
//	field table: one record per field, 89 bytes (v2) or 55 bytes (v1)
//	  0  u8 type: 0 U08 1 S08 2 U16 3 S16 4 U32 5 S32 6 S64 7 F32;
//	     bit fields 16 U08, 17 U16, 18 U32 (older tools wrote 10..12)
//	  1  name, 34 bytes, NUL padded
//	 35  units, 10 bytes, NUL padded
//	 45  u8 display style (0 float, 1 hex, 2 bits, 3 date, 4 on/off, ...)
//	 46  scalar: f32 scale, f32 transform, s8 digits
//	     bit field: u8 bit style, u32 file offset of its bit names,
//	     u8 number of bit names, 3 unused bytes
//	 55  v2 only: category, 34 bytes, NUL padded
//	bit names (NUL-terminated strings), then the info block (text, NUL
//	terminated) from the info data start to the data begin index; writers
//	without an info block set its start to 0
//	data blocks from the data begin index to the end of the file:
//	  0  u8 block type: 0 field data, 1 marker
//	  1  u8 rolling counter
//	  2  u16 timestamp, 10 µs units, wrapping
//	  4  field data: the record (record-length bytes), then a u8 checksum,
//	     the sum of the record's bytes modulo 256
//	     marker: a 50-byte message, NUL padded, no checksum
//
// A value is (raw + transform) × scale. The layout was checked against the
// two real TunerStudio v2 logs of the test suite (header, field table, bit
// names, info block, checksums of every record, digits against TunerStudio's
// CSV export); v1 (which TunerStudio no longer writes) follows rusEFI's
// writer. The marker layout comes from public readers only: neither real
// log has markers.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors the MLG decoder returns, wrapped in a *ParseError that says where.
var (
	// ErrBadMLG: the input is not a well-formed MLVLG binary log (bad
	// magic, unsupported version, an inconsistent header or field table,
	// an unknown block type, or a truncated header or block).
	ErrBadMLG = errors.New("malformed MLG binary log")
	// ErrMLGChecksum: a data record's checksum does not match its bytes.
	// The record was read whole, so decoding can go on with the next one.
	ErrMLGChecksum = errors.New("MLG record checksum mismatch")
)

// MLG layout constants.
const (
	mlgMagic          = "MLVLG\x00"
	mlgHeaderV1       = 22
	mlgHeaderV2       = 24
	mlgFieldV1        = 55
	mlgFieldV2        = 89
	mlgNameLen        = 34
	mlgUnitsLen       = 10
	mlgCategoryLen    = 34
	mlgBlockHeader    = 4 // type, counter, u16 timestamp
	mlgMarkerLen      = 50
	mlgBlockData      = 0
	mlgBlockMarker    = 1
	mlgMaxInfo        = 1 << 20  // bytes of info text kept; the rest is skipped
	mlgMaxBitNames    = 64 << 10 // bytes of the bit-name area kept
	mlgMaxBitNameList = 64       // names kept per bit field (a U32 has 32 bits)
	mlgBufSize        = 16 << 10
)

// mlgType is a field's storage type code.
type mlgType uint8

// The field types. A bit field holds flags; TunerStudio gives it no scale.
const (
	mlgU08     mlgType = 0
	mlgS08     mlgType = 1
	mlgU16     mlgType = 2
	mlgS16     mlgType = 3
	mlgU32     mlgType = 4
	mlgS32     mlgType = 5
	mlgS64     mlgType = 6
	mlgF32     mlgType = 7
	mlgBitsU08 mlgType = 16
	mlgBitsU16 mlgType = 17
	mlgBitsU32 mlgType = 18
	// Older tools (mlg-converter) numbered the bit fields 10..12.
	mlgOldBitsU08 mlgType = 10
	mlgOldBitsU16 mlgType = 11
	mlgOldBitsU32 mlgType = 12
)

// size returns the bytes a field of type t takes in a record, or 0 for an
// unknown type.
func (t mlgType) size() int {
	switch t {
	case mlgU08, mlgS08, mlgBitsU08, mlgOldBitsU08:
		return 1
	case mlgU16, mlgS16, mlgBitsU16, mlgOldBitsU16:
		return 2
	case mlgU32, mlgS32, mlgF32, mlgBitsU32, mlgOldBitsU32:
		return 4
	case mlgS64:
		return 8
	}
	return 0
}

// isBits reports whether t is a bit-field type.
func (t mlgType) isBits() bool {
	return t == mlgBitsU08 || t == mlgBitsU16 || t == mlgBitsU32 ||
		t == mlgOldBitsU08 || t == mlgOldBitsU16 || t == mlgOldBitsU32
}

// mlgField describes one logged channel of an MLG file.
type mlgField struct {
	Name         string  // as stored (TunerStudio leaves bit fields unnamed)
	Units        string  // as stored; often empty (temperatures have none)
	Type         mlgType // storage type
	DisplayStyle uint8   // 0 float, 1 hex, 2 bits, 3 date, 4 on/off, ...
	// Scale and Transform give the value: (raw + Transform) × Scale. They
	// are stored as float32 and converted through their shortest decimal
	// form, so that a scale of 0.1 is 0.1, not 0.10000000149. A bit field
	// has Scale 1 and Transform 0.
	Scale, Transform float64
	Digits           int8   // decimals to display
	Category         string // v2 only
	Offset, Size     int    // the field's bytes within a record
	// BitNames are the names a bit field lists, in file order. Which bit
	// each stands for is not stored with them: Speeduino's engine
	// protection byte lists 2 or 3 names for its 8 bits.
	BitNames []string
}

// mlgDecoder streams an MLG binary log: newMLGDecoder reads the header, the
// field table and the info block, and Next then yields the data records one
// at a time. It holds one record; it never seeks. It is not safe for
// concurrent use.
type mlgDecoder struct {
	br        *bufio.Reader
	name      string
	version   int
	timestamp time.Time
	fields    []mlgField
	info      string
	celsius   bool // the info block's tune says CELSIUS
	fahr      bool // ... or FAHRENHEIT
	recLen    int

	block  []byte // the current data block: header, record, checksum
	pos    int64  // bytes consumed
	off    int64  // offset of the current block
	valid  bool   // block holds a record
	err    error  // sticky error (io.EOF at the end)
	nRec   int64
	nMark  int64
	nBad   int64
	marker [mlgMarkerLen]byte
}

// looksMLG reports whether head starts like an MLVLG binary log.
func looksMLG(head []byte) bool {
	return bytes.HasPrefix(head, []byte(mlgMagic))
}

// newMLGDecoder reads the header, field table, bit names and info block of
// the MLG log r; name is used in errors. Only the first 1 MiB of the info
// block is kept. When r is a *bufio.Reader it is used as is.
func newMLGDecoder(r io.Reader, name string) (*mlgDecoder, error) {
	d := &mlgDecoder{name: name}
	if br, ok := r.(*bufio.Reader); ok {
		d.br = br
	} else {
		d.br = bufio.NewReaderSize(r, mlgBufSize)
	}
	if err := d.readHeader(); err != nil {
		return nil, err
	}
	return d, nil
}

// bad returns a *ParseError at offset off wrapping ErrBadMLG.
func (d *mlgDecoder) bad(off int64, format string, args ...any) *ParseError {
	return &ParseError{File: d.name, Offset: off, Err: fmt.Errorf("%w: "+format, append([]any{ErrBadMLG}, args...)...)}
}

// readFull fills p from the input; what names the part for a truncation
// error.
func (d *mlgDecoder) readFull(p []byte, what string) error {
	start := d.pos
	n, err := io.ReadFull(d.br, p)
	d.pos += int64(n)
	if err == nil {
		return nil
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return d.bad(start, "%s truncated: %d of %d bytes: %w", what, n, len(p), io.ErrUnexpectedEOF)
	}
	return &ParseError{File: d.name, Offset: d.pos, Err: err}
}

// readHeader reads everything before the first data block.
func (d *mlgDecoder) readHeader() error {
	var h [mlgHeaderV2]byte
	if err := d.readFull(h[:8], "file header"); err != nil {
		return err
	}
	if string(h[:6]) != mlgMagic {
		return d.bad(0, "no %q magic", mlgMagic[:5])
	}
	hdrLen, fieldLen := 0, 0
	switch d.version = int(binary.BigEndian.Uint16(h[6:])); d.version {
	case 1:
		hdrLen, fieldLen = mlgHeaderV1, mlgFieldV1
	case 2:
		hdrLen, fieldLen = mlgHeaderV2, mlgFieldV2
	default:
		return d.bad(6, "unsupported format version %d", d.version)
	}
	if err := d.readFull(h[8:hdrLen], "file header"); err != nil {
		return err
	}
	if ts := binary.BigEndian.Uint32(h[8:]); ts != 0 {
		d.timestamp = time.Unix(int64(ts), 0).UTC()
	}
	p := h[12:hdrLen]
	var infoStart int64
	if d.version == 1 {
		infoStart, p = int64(binary.BigEndian.Uint16(p)), p[2:]
	} else {
		infoStart, p = int64(binary.BigEndian.Uint32(p)), p[4:]
	}
	dataBegin := int64(binary.BigEndian.Uint32(p))
	d.recLen = int(binary.BigEndian.Uint16(p[4:]))
	nFields := int(binary.BigEndian.Uint16(p[6:]))
	if nFields == 0 {
		return d.bad(int64(hdrLen-2), "no fields")
	}
	fieldsEnd := int64(hdrLen) + int64(nFields)*int64(fieldLen)
	if dataBegin < fieldsEnd {
		return d.bad(int64(hdrLen-8), "data begins at byte %d, inside the field table (%d fields end at byte %d)", dataBegin, nFields, fieldsEnd)
	}
	if infoStart != 0 && (infoStart < fieldsEnd || infoStart > dataBegin) {
		return d.bad(12, "info block starts at byte %d, outside bytes %d..%d", infoStart, fieldsEnd, dataBegin)
	}

	// The field table. Fields are appended as they are read, so a header
	// that claims many fields costs memory only for the bytes really there.
	d.fields = make([]mlgField, 0, min(nFields, 256))
	rec := make([]byte, fieldLen)
	type bitRef struct {
		field int
		at    int64
		n     int
	}
	var bitRefs []bitRef
	offset := 0
	for i := range nFields {
		at := d.pos
		if err := d.readFull(rec, "field table"); err != nil {
			return err
		}
		f := mlgField{
			Type:         mlgType(rec[0]),
			Name:         mlgString(rec[1 : 1+mlgNameLen]),
			Units:        mlgString(rec[35 : 35+mlgUnitsLen]),
			DisplayStyle: rec[45],
			Offset:       offset,
		}
		fieldErr := func(format string, args ...any) error {
			e := d.bad(at, format, args...)
			e.Column, e.ColumnIndex = f.Name, i+1
			return e
		}
		if f.Size = f.Type.size(); f.Size == 0 {
			return fieldErr("field %d has unknown type %d", i+1, rec[0])
		}
		if offset += f.Size; offset > d.recLen {
			return fieldErr("fields overrun the record length %d at field %d", d.recLen, i+1)
		}
		if f.Type.isBits() {
			f.Scale = 1
			ref := bitRef{field: i, at: int64(binary.BigEndian.Uint32(rec[47:])), n: int(rec[51])}
			if ref.n > 0 {
				bitRefs = append(bitRefs, ref)
			}
		} else {
			scale := math.Float32frombits(binary.BigEndian.Uint32(rec[46:]))
			transform := math.Float32frombits(binary.BigEndian.Uint32(rec[50:]))
			if !isFinite32(scale) || !isFinite32(transform) {
				return fieldErr("field %d has a scale %v or transform %v that is not a number", i+1, scale, transform)
			}
			f.Scale, f.Transform = decimal32(scale), decimal32(transform)
			f.Digits = int8(rec[54])
		}
		if d.version == 2 {
			f.Category = mlgString(rec[55 : 55+mlgCategoryLen])
		}
		d.fields = append(d.fields, f)
	}
	if offset != d.recLen {
		return d.bad(int64(hdrLen-4), "record length %d, but the fields add up to %d bytes", d.recLen, offset)
	}

	// Bit names sit between the field table and the info block (or the
	// data when there is none).
	areaEnd := dataBegin
	if infoStart != 0 {
		areaEnd = infoStart
	}
	var names []byte
	if err := d.stream(areaEnd-fieldsEnd, "bit names", func(p []byte) {
		if n := min(len(p), mlgMaxBitNames-len(names)); n > 0 {
			names = append(names, p[:n]...)
		}
	}); err != nil {
		return err
	}
	for _, ref := range bitRefs {
		d.fields[ref.field].BitNames = mlgBitNames(names, ref.at-fieldsEnd, ref.n)
	}

	// The info block: free text, in TunerStudio's logs two quoted lines
	// then the whole tune as MSQ XML, NUL terminated.
	if infoStart != 0 {
		info := make([]byte, 0, min(dataBegin-infoStart, mlgMaxInfo))
		var scan mlgTempScanner
		if err := d.stream(dataBegin-infoStart, "info block", func(p []byte) {
			if n := min(len(p), mlgMaxInfo-len(info)); n > 0 {
				info = append(info, p[:n]...)
			}
			scan.feed(p)
		}); err != nil {
			return err
		}
		d.info = latin1(bytes.TrimRight(info, "\x00"))
		d.celsius, d.fahr = scan.celsius, scan.fahr
	}

	d.block = make([]byte, mlgBlockHeader+d.recLen+1)
	return nil
}

// stream passes the next n bytes of the input to fn in chunks (valid only
// during the call), without copying them.
func (d *mlgDecoder) stream(n int64, what string, fn func([]byte)) error {
	for n > 0 {
		p, err := d.br.Peek(int(min(n, int64(d.br.Size()))))
		if len(p) > 0 {
			fn(p)
			d.br.Discard(len(p)) // cannot fail: the bytes are buffered
			d.pos += int64(len(p))
			n -= int64(len(p))
		}
		if n > 0 && err != nil {
			if err == io.EOF {
				return d.bad(d.pos, "%s truncated: %d bytes missing: %w", what, n, io.ErrUnexpectedEOF)
			}
			return &ParseError{File: d.name, Offset: d.pos, Err: err}
		}
	}
	return nil
}

// Next advances to the next data record, skipping (and counting) marker
// blocks. It returns io.EOF after the last record. A record whose checksum
// does not match yields a *ParseError wrapping ErrMLGChecksum; its values
// stay readable and Next may be called again. Every other error (a
// truncated last block wraps io.ErrUnexpectedEOF and ErrBadMLG; all records
// before it were delivered) is final: Next keeps returning it.
func (d *mlgDecoder) Next() error {
	if d.err != nil {
		return d.err
	}
	d.valid = false
	for {
		d.off = d.pos
		hdr := d.block[:mlgBlockHeader]
		n, err := io.ReadFull(d.br, hdr)
		d.pos += int64(n)
		if err == io.EOF {
			d.err = io.EOF
			return d.err
		}
		if err != nil {
			return d.fail(err, "block header", n, len(hdr))
		}
		switch hdr[0] {
		case mlgBlockData:
			body := d.block[mlgBlockHeader:]
			n, err := io.ReadFull(d.br, body)
			d.pos += int64(n)
			if err != nil {
				return d.fail(err, "data record", mlgBlockHeader+n, len(d.block))
			}
			d.nRec++
			d.valid = true
			rec, stored := body[:d.recLen], body[d.recLen]
			var sum byte
			for _, b := range rec {
				sum += b
			}
			if sum != stored {
				d.nBad++
				return &ParseError{File: d.name, Offset: d.off, Err: fmt.Errorf("%w: record %d sums to 0x%02x, stored 0x%02x", ErrMLGChecksum, d.nRec, sum, stored)}
			}
			return nil
		case mlgBlockMarker:
			n, err := io.ReadFull(d.br, d.marker[:])
			d.pos += int64(n)
			if err != nil {
				return d.fail(err, "marker", mlgBlockHeader+n, mlgBlockHeader+mlgMarkerLen)
			}
			d.nMark++
		default:
			d.err = d.bad(d.off, "unknown block type %d after %d records", hdr[0], d.nRec)
			return d.err
		}
	}
}

// fail records the final error for a block cut short (got of want bytes) or
// an I/O error.
func (d *mlgDecoder) fail(err error, what string, got, want int) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		d.err = d.bad(d.off, "%s truncated: %d of %d bytes after %d records: %w", what, got, want, d.nRec, io.ErrUnexpectedEOF)
	} else {
		d.err = &ParseError{File: d.name, Offset: d.pos, Err: err}
	}
	return d.err
}

// Version returns the format version, 1 or 2.
func (d *mlgDecoder) Version() int { return d.version }

// Timestamp returns the file's creation time (UTC), or the zero Time when
// the writer left it 0 (rusEFI does).
func (d *mlgDecoder) Timestamp() time.Time { return d.timestamp }

// Fields returns the field table, in record order. The caller must not
// modify it.
func (d *mlgDecoder) Fields() []mlgField { return d.fields }

// Info returns the info block's text (at most its first 1 MiB, read as
// ISO-8859-1 unless it is valid UTF-8), or "" when the file has none.
func (d *mlgDecoder) Info() string { return d.info }

// TemperatureUnit reports the temperature unit of the TunerStudio project
// that wrote the log: the <settings> of the tune embedded in the info block
// list either <setting name="CELSIUS" .../> or <setting name="FAHRENHEIT"
// .../>. ok is false when neither (or both) appear, e.g. in rusEFI logs,
// which have no info block. The field table itself carries no temperature
// units. The whole info block is scanned, also beyond the 1 MiB kept.
func (d *mlgDecoder) TemperatureUnit() (celsius, ok bool) {
	if d.celsius == d.fahr {
		return false, false
	}
	return d.celsius, true
}

// Value returns field i of the current record: (raw + transform) × scale
// for a number, the raw flags as an unsigned integer for a bit field (as
// TunerStudio's CSV export shows them). It
// returns NaN when there is no current record, i is out of range, or the
// field is an F32 holding NaN or an infinity.
func (d *mlgDecoder) Value(i int) float64 {
	if !d.valid || uint(i) >= uint(len(d.fields)) {
		return math.NaN()
	}
	return d.value(&d.fields[i], d.block[mlgBlockHeader:])
}

// Values decodes every field of the current record into dst (grown to the
// number of fields) and returns it.
func (d *mlgDecoder) Values(dst []float64) []float64 {
	if cap(dst) < len(d.fields) {
		dst = make([]float64, len(d.fields))
	}
	dst = dst[:len(d.fields)]
	if !d.valid {
		for i := range dst {
			dst[i] = math.NaN()
		}
		return dst
	}
	rec := d.block[mlgBlockHeader:]
	for i := range d.fields {
		dst[i] = d.value(&d.fields[i], rec)
	}
	return dst
}

// value decodes f from rec; the field table guarantees f fits in rec.
func (d *mlgDecoder) value(f *mlgField, rec []byte) float64 {
	b := rec[f.Offset:]
	var raw float64
	switch f.Type {
	case mlgU08:
		raw = float64(b[0])
	case mlgS08:
		raw = float64(int8(b[0]))
	case mlgU16:
		raw = float64(binary.BigEndian.Uint16(b))
	case mlgS16:
		raw = float64(int16(binary.BigEndian.Uint16(b)))
	case mlgU32:
		raw = float64(binary.BigEndian.Uint32(b))
	case mlgS32:
		raw = float64(int32(binary.BigEndian.Uint32(b)))
	case mlgS64:
		raw = float64(int64(binary.BigEndian.Uint64(b)))
	case mlgF32:
		raw = float64(math.Float32frombits(binary.BigEndian.Uint32(b)))
		if math.IsInf(raw, 0) {
			return math.NaN()
		}
	case mlgBitsU08, mlgOldBitsU08:
		return float64(b[0])
	case mlgBitsU16, mlgOldBitsU16:
		return float64(binary.BigEndian.Uint16(b))
	case mlgBitsU32, mlgOldBitsU32:
		return float64(binary.BigEndian.Uint32(b))
	}
	// No overflow: |raw| < 2^64 and the float32 scale and transform are
	// below 3.5e38, so the result stays far below float64's 1.8e308.
	return (raw + f.Transform) * f.Scale
}

// Offset returns the byte offset of the current data block (its type byte),
// of the block that failed, or, after io.EOF, the input's length.
func (d *mlgDecoder) Offset() int64 { return d.off }

// Ticks returns the current block's timestamp: 10 µs units, wrapping every
// 0.65536 s.
func (d *mlgDecoder) Ticks() uint16 { return binary.BigEndian.Uint16(d.block[2:4]) }

// Records returns the data records read so far (including any with a bad
// checksum).
func (d *mlgDecoder) Records() int64 { return d.nRec }

// Markers returns the marker blocks skipped so far.
func (d *mlgDecoder) Markers() int64 { return d.nMark }

// BadChecksums returns the records read so far whose checksum did not match.
func (d *mlgDecoder) BadChecksums() int64 { return d.nBad }

// mlgString returns a NUL-padded text field without its padding and
// surrounding blanks, as UTF-8.
func mlgString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(latin1(b))
}

// latin1 returns b as a string: as is when valid UTF-8, else decoded as
// ISO-8859-1, the encoding TunerStudio declares for its logs.
func latin1(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+len(b)/4)
	for _, c := range b {
		out = utf8.AppendRune(out, rune(c))
	}
	return string(out)
}

// mlgBitNames returns n NUL-terminated names starting at offset at of the
// bit-name area, or nil when they are not all inside it.
func mlgBitNames(area []byte, at int64, n int) []string {
	if at < 0 || at >= int64(len(area)) || n > mlgMaxBitNameList {
		return nil
	}
	p := area[at:]
	names := make([]string, 0, n)
	for range n {
		i := bytes.IndexByte(p, 0)
		if i < 0 {
			return nil
		}
		names = append(names, strings.TrimSpace(latin1(p[:i])))
		p = p[i+1:]
	}
	return names
}

// isFinite32 reports whether f is neither NaN nor infinite.
func isFinite32(f float32) bool {
	return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0)
}

// decimal32 converts f to the float64 nearest its shortest decimal form.
func decimal32(f float32) float64 {
	v, err := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	if err != nil { // cannot happen for a finite float32
		return float64(f)
	}
	return v
}

// mlgTempScanner looks for TunerStudio's temperature-unit settings in a
// stream of chunks, also across chunk boundaries.
type mlgTempScanner struct {
	tail          []byte
	celsius, fahr bool
}

var (
	mlgCelsius    = []byte(`<setting name="CELSIUS"`)
	mlgFahrenheit = []byte(`<setting name="FAHRENHEIT"`)
)

// feed scans the next chunk of text.
func (s *mlgTempScanner) feed(p []byte) {
	const keep = 32 // longer than either pattern
	// Patterns that straddle the previous chunk and this one.
	if len(s.tail) > 0 {
		w := append(s.tail, p[:min(len(p), keep)]...)
		s.match(w)
	}
	s.match(p)
	if len(p) >= keep {
		s.tail = append(s.tail[:0], p[len(p)-keep:]...)
	} else {
		s.tail = append(s.tail, p...)
		if len(s.tail) > keep {
			s.tail = append(s.tail[:0], s.tail[len(s.tail)-keep:]...)
		}
	}
}

func (s *mlgTempScanner) match(p []byte) {
	s.celsius = s.celsius || bytes.Contains(p, mlgCelsius)
	s.fahr = s.fahr || bytes.Contains(p, mlgFahrenheit)
}
