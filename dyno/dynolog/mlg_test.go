package dynolog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/internal/shareddata"
)

// The two real TunerStudio logs (see ../shared/testdata/reallogs/SOURCES.md).
const (
	mlgPassat  = "mlg__TakumiPT__passat-b2-speeduino__2025-12-02_10.47.33.mlg"
	csvPassat  = "tunerstudio-csv__TakumiPT__passat-b2-speeduino__2025-12-02_10.47.33.csv"
	mlgImpreza = "mlg__Wakamoly__Speeduino-Impreza-Project__2024-07-17_20.10.20.mlg"
)

// mlgTestField is a field of a synthetic MLG file.
type mlgTestField struct {
	typ              mlgType
	name, units      string
	style            uint8
	scale, transform float32
	digits           int8
	category         string
	bitNames         []string // bit fields only
}

// mlgTestBlock is a data record (raw values, one per field) or, when
// marker is set, a marker block.
type mlgTestBlock struct {
	raw    []float64
	marker string
	badSum bool // store a wrong checksum
}

// mlgTestFile describes a synthetic MLG file; bytes writes it.
type mlgTestFile struct {
	version int
	ts      uint32
	fields  []mlgTestField
	info    string // "" writes no info block (info start 0, as rusEFI does)
	blocks  []mlgTestBlock
}

// layout returns the header length, field record length and the offsets of
// the field table's end, the info block (0 when none) and the data.
func (f *mlgTestFile) layout() (hdrLen, fieldLen int, fieldsEnd, infoStart, dataBegin int) {
	hdrLen, fieldLen = mlgHeaderV2, mlgFieldV2
	if f.version == 1 {
		hdrLen, fieldLen = mlgHeaderV1, mlgFieldV1
	}
	fieldsEnd = hdrLen + len(f.fields)*fieldLen
	names := 0
	for _, fd := range f.fields {
		for _, n := range fd.bitNames {
			names += len(n) + 1
		}
	}
	dataBegin = fieldsEnd + names
	if f.info != "" {
		infoStart = dataBegin
		dataBegin += len(f.info) + 1
	}
	return
}

func (f *mlgTestFile) recordLen() int {
	n := 0
	for _, fd := range f.fields {
		n += fd.typ.size()
	}
	return n
}

// bytes writes the file.
func (f *mlgTestFile) bytes() []byte {
	hdrLen, fieldLen, fieldsEnd, infoStart, dataBegin := f.layout()
	var b []byte
	b = append(b, mlgMagic...)
	b = binary.BigEndian.AppendUint16(b, uint16(f.version))
	b = binary.BigEndian.AppendUint32(b, f.ts)
	if f.version == 1 {
		b = binary.BigEndian.AppendUint16(b, uint16(infoStart))
	} else {
		b = binary.BigEndian.AppendUint32(b, uint32(infoStart))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(dataBegin))
	b = binary.BigEndian.AppendUint16(b, uint16(f.recordLen()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(f.fields)))
	if len(b) != hdrLen {
		panic("header length")
	}
	var names []byte
	for _, fd := range f.fields {
		rec := make([]byte, fieldLen)
		rec[0] = byte(fd.typ)
		copy(rec[1:35], fd.name)
		copy(rec[35:45], fd.units)
		rec[45] = fd.style
		if fd.typ.isBits() {
			rec[46] = 4
			binary.BigEndian.PutUint32(rec[47:], uint32(fieldsEnd+len(names)))
			rec[51] = byte(len(fd.bitNames))
			for _, n := range fd.bitNames {
				names = append(append(names, n...), 0)
			}
		} else {
			binary.BigEndian.PutUint32(rec[46:], math.Float32bits(fd.scale))
			binary.BigEndian.PutUint32(rec[50:], math.Float32bits(fd.transform))
			rec[54] = byte(fd.digits)
		}
		if f.version == 2 {
			copy(rec[55:89], fd.category)
		}
		b = append(b, rec...)
	}
	b = append(b, names...)
	if f.info != "" {
		b = append(append(b, f.info...), 0)
	}
	if len(b) != dataBegin {
		panic("data begin")
	}
	for i, bl := range f.blocks {
		ticks := uint16(i * 6667)
		if bl.marker != "" {
			b = append(b, mlgBlockMarker, byte(i))
			b = binary.BigEndian.AppendUint16(b, ticks)
			var msg [mlgMarkerLen]byte
			copy(msg[:], bl.marker)
			b = append(b, msg[:]...)
			continue
		}
		b = append(b, mlgBlockData, byte(i))
		b = binary.BigEndian.AppendUint16(b, ticks)
		start := len(b)
		for j, fd := range f.fields {
			b = mlgAppendRaw(b, fd.typ, bl.raw[j])
		}
		var sum byte
		for _, c := range b[start:] {
			sum += c
		}
		if bl.badSum {
			sum++
		}
		b = append(b, sum)
	}
	return b
}

// mlgAppendRaw appends v stored as type t.
func mlgAppendRaw(b []byte, t mlgType, v float64) []byte {
	switch t {
	case mlgU08, mlgBitsU08, mlgOldBitsU08:
		return append(b, uint8(v))
	case mlgS08:
		return append(b, byte(int8(v)))
	case mlgU16, mlgBitsU16, mlgOldBitsU16:
		return binary.BigEndian.AppendUint16(b, uint16(v))
	case mlgS16:
		return binary.BigEndian.AppendUint16(b, uint16(int16(v)))
	case mlgU32, mlgBitsU32, mlgOldBitsU32:
		return binary.BigEndian.AppendUint32(b, uint32(v))
	case mlgS32:
		return binary.BigEndian.AppendUint32(b, uint32(int32(v)))
	case mlgS64:
		return binary.BigEndian.AppendUint64(b, uint64(int64(v)))
	case mlgF32:
		return binary.BigEndian.AppendUint32(b, math.Float32bits(float32(v)))
	}
	panic("type")
}

// mlgAllTypes has every field type, negative transforms and bit fields.
var mlgAllTypes = []mlgTestField{
	{typ: mlgF32, name: "Time", units: "s", scale: 1, digits: 3, category: "Basic"},
	{typ: mlgU16, name: "RPM", units: "rpm", scale: 1},
	{typ: mlgU08, name: "TPS", units: "%", scale: 0.5, digits: 1},
	{typ: mlgU08, name: "CLT", units: "°C", scale: 1, transform: -40, category: "Sensors"},
	{typ: mlgS08, name: "Advance", units: "deg", scale: 1},
	{typ: mlgS16, name: "rpm/s", units: "rpm/s", scale: 10},
	{typ: mlgU32, name: "Odometer", scale: 0.001, digits: 3},
	{typ: mlgS32, name: "Delta", scale: 0.01, transform: -100, digits: 2},
	{typ: mlgS64, name: "Big", scale: 1},
	{typ: mlgBitsU08, units: "bits", style: 2, bitNames: []string{"Engine Prot. RPM", "Engine Prot. CLT"}},
	{typ: mlgBitsU16, name: "Status16", units: "bits", style: 2, bitNames: []string{"a", "b", "c"}},
	{typ: mlgBitsU32, name: "Status32", style: 2},
	{typ: mlgOldBitsU08, name: "Old bits", style: 2},
	{typ: mlgF32, name: "Lambda", scale: 14.7, transform: -0.5, digits: 3},
}

// mlgAllTypesRecords are raw records for mlgAllTypes.
var mlgAllTypesRecords = [][]float64{
	{0.125, 850, 7, 130, -5, -1200, 123456789, -2000000000, -1 << 40, 2, 0x8001, 0xdeadbeef, 255, 1.5},
	{0.191, 65535, 255, 0, 127, 32767, 4294967295, 2147483647, 1 << 53, 0, 0, 0, 0, -1e6},
	{1e6, 0, 0, 255, -128, -32768, 0, 0, 0, 255, 65535, 4294967295, 1, 0},
}

// mlgWant returns the value expected of raw in field f.
func mlgWant(f mlgTestField, raw float64) float64 {
	if f.typ.isBits() {
		return raw
	}
	if f.typ == mlgF32 {
		raw = float64(float32(raw))
	}
	scale, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f.scale), 'g', -1, 32), 64)
	transform, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f.transform), 'g', -1, 32), 64)
	return (raw + transform) * scale
}

// mlgSynthetic returns a file of mlgAllTypes with marker blocks around and
// between its records.
func mlgSynthetic(version int, info string) *mlgTestFile {
	f := &mlgTestFile{version: version, ts: 1764672458, fields: mlgAllTypes, info: info}
	f.blocks = []mlgTestBlock{
		{marker: "start"},
		{raw: mlgAllTypesRecords[0]},
		{marker: "MARK 001"},
		{marker: strings.Repeat("x", mlgMarkerLen)},
		{raw: mlgAllTypesRecords[1]},
		{raw: mlgAllTypesRecords[2]},
		{marker: "end"},
	}
	return f
}

func TestLooksMLG(t *testing.T) {
	assert.True(t, looksMLG([]byte("MLVLG\x00\x00\x02")))
	assert.True(t, looksMLG([]byte("MLVLG\x00")))
	assert.False(t, looksMLG([]byte("MLVLG")))
	assert.False(t, looksMLG([]byte("MLVLG1")))
	assert.False(t, looksMLG([]byte("Time;RPM")))
	assert.False(t, looksMLG(nil))
}

func TestMLGSynthetic(t *testing.T) {
	const info = "\"speeduino 202501\"\n<settings>\n<setting name=\"CELSIUS\" value=\"CELSIUS\"/>\n</settings>\n"
	for _, version := range []int{1, 2} {
		for _, rd := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{
			{"plain", func(r io.Reader) io.Reader { return r }},
			{"one-byte", iotest.OneByteReader},
			{"half", iotest.HalfReader},
			{"data-err", iotest.DataErrReader},
			{"small-bufio", func(r io.Reader) io.Reader { return bufio.NewReaderSize(r, 16) }},
		} {
			t.Run(strconv.Itoa(version)+"/"+rd.name, func(t *testing.T) {
				f := mlgSynthetic(version, info)
				data := f.bytes()
				d, err := newMLGDecoder(rd.wrap(bytes.NewReader(data)), "syn.mlg")
				require.NoError(t, err)
				assert.Equal(t, version, d.Version())
				assert.Equal(t, time.Date(2025, 12, 2, 10, 47, 38, 0, time.UTC), d.Timestamp())
				assert.Equal(t, strings.TrimRight(info, "\x00"), d.Info())
				celsius, ok := d.TemperatureUnit()
				assert.True(t, celsius)
				assert.True(t, ok)

				fields := d.Fields()
				require.Len(t, fields, len(mlgAllTypes))
				off := 0
				for i, fd := range fields {
					want := mlgAllTypes[i]
					assert.Equal(t, want.typ, fd.Type, i)
					assert.Equal(t, want.name, fd.Name, i)
					assert.Equal(t, want.units, fd.Units, i)
					assert.Equal(t, want.style, fd.DisplayStyle, i)
					assert.Equal(t, off, fd.Offset, i)
					assert.Equal(t, want.typ.size(), fd.Size, i)
					off += fd.Size
					if version == 2 {
						assert.Equal(t, want.category, fd.Category, i)
					} else {
						assert.Empty(t, fd.Category, i)
					}
					if want.typ.isBits() {
						assert.Equal(t, 1.0, fd.Scale)
						assert.Equal(t, 0.0, fd.Transform)
						assert.Equal(t, want.bitNames, fd.BitNames, i)
					} else {
						assert.Equal(t, want.digits, fd.Digits, i)
						assert.Nil(t, fd.BitNames)
					}
				}
				_, _, _, _, dataBegin := f.layout()
				blockLen := int64(mlgBlockHeader + f.recordLen() + 1)
				markerLen := int64(mlgBlockHeader + mlgMarkerLen)
				wantOff := []int64{
					int64(dataBegin) + markerLen,
					int64(dataBegin) + 3*markerLen + blockLen,
					int64(dataBegin) + 3*markerLen + 2*blockLen,
				}
				wantMarkers := []int64{1, 3, 3}
				var vals []float64
				for k, raw := range mlgAllTypesRecords {
					require.NoError(t, d.Next(), "record %d", k)
					assert.Equal(t, wantOff[k], d.Offset())
					assert.Equal(t, wantMarkers[k], d.Markers())
					assert.Equal(t, int64(k+1), d.Records())
					vals = d.Values(vals)
					for i, fd := range mlgAllTypes {
						want := mlgWant(fd, raw[i])
						assert.InDelta(t, want, d.Value(i), 1e-9*max(1, math.Abs(want)), "record %d field %d %q", k, i, fd.name)
						assert.Equal(t, d.Value(i), vals[i])
					}
				}
				assert.Equal(t, io.EOF, d.Next())
				assert.Equal(t, io.EOF, d.Next())
				assert.Equal(t, int64(4), d.Markers())
				assert.Equal(t, int64(0), d.BadChecksums())
				assert.True(t, math.IsNaN(d.Value(0)), "no current record after EOF")
			})
		}
	}
}

// Concrete values, not computed as the decoder does.
func TestMLGSyntheticValues(t *testing.T) {
	d, err := newMLGDecoder(bytes.NewReader(mlgSynthetic(2, "").bytes()), "syn.mlg")
	require.NoError(t, err)
	require.NoError(t, d.Next())
	for i, want := range []float64{0.125, 850, 3.5, 90, -5, -12000, 123456.789, -20000001, -1 << 40, 2, 0x8001, 0xdeadbeef, 255, 14.7} {
		assert.InDelta(t, want, d.Value(i), 1e-9*max(1, math.Abs(want)), "field %d", i)
	}
	assert.Equal(t, uint16(6667), d.Ticks())
	assert.True(t, math.IsNaN(d.Value(-1)))
	assert.True(t, math.IsNaN(d.Value(len(mlgAllTypes))))
}

// An infinite F32 reads as NaN; the largest integers and scales stay finite.
func TestMLGNonFinite(t *testing.T) {
	f := &mlgTestFile{version: 2, fields: []mlgTestField{
		{typ: mlgF32, name: "F", scale: 1},
		{typ: mlgS64, name: "Big", scale: math.MaxFloat32, transform: math.MaxFloat32},
		{typ: mlgU32, name: "U", scale: -math.MaxFloat32},
	}, blocks: []mlgTestBlock{
		{raw: []float64{math.Inf(1), math.MaxInt64, math.MaxUint32}},
		{raw: []float64{math.Inf(-1), math.MinInt64, 0}},
		{raw: []float64{math.NaN(), 0, 1}},
	}}
	d, err := newMLGDecoder(bytes.NewReader(f.bytes()), "inf.mlg")
	require.NoError(t, err)
	for k := range 3 {
		require.NoError(t, d.Next())
		assert.True(t, math.IsNaN(d.Value(0)), "record %d", k)
		for i := 1; i < 3; i++ {
			assert.False(t, math.IsInf(d.Value(i), 0) || math.IsNaN(d.Value(i)), "record %d field %d: %v", k, i, d.Value(i))
		}
	}
}

// rusEFI writes v1 files with a zero timestamp and no info block.
func TestMLGRusEFIStyleV1(t *testing.T) {
	f := &mlgTestFile{version: 1, fields: []mlgTestField{
		{typ: mlgU16, name: "RPM", units: "rpm", scale: 1},
		{typ: mlgU32, name: "Time", units: "sec", scale: 0.001, digits: 3},
		{typ: mlgS16, name: "CLT", units: "C", scale: 0.01, digits: 1},
	}}
	for i := range 10 {
		f.blocks = append(f.blocks, mlgTestBlock{raw: []float64{float64(800 + i), float64(1000 * i), -512}})
	}
	d, err := newMLGDecoder(bytes.NewReader(f.bytes()), "rusefi.mlg")
	require.NoError(t, err)
	assert.True(t, d.Timestamp().IsZero())
	assert.Empty(t, d.Info())
	_, ok := d.TemperatureUnit()
	assert.False(t, ok)
	for i := range 10 {
		require.NoError(t, d.Next())
		assert.Equal(t, float64(800+i), d.Value(0))
		assert.InDelta(t, float64(i), d.Value(1), 1e-12)
		assert.InDelta(t, -5.12, d.Value(2), 1e-12)
	}
	assert.Equal(t, io.EOF, d.Next())
	assert.Equal(t, int64(10), d.Records())
}

func TestMLGEmptyData(t *testing.T) {
	f := mlgSynthetic(2, "info")
	f.blocks = nil
	d, err := newMLGDecoder(bytes.NewReader(f.bytes()), "empty.mlg")
	require.NoError(t, err)
	assert.Equal(t, io.EOF, d.Next())
	assert.True(t, math.IsNaN(d.Value(0)))
	for _, v := range d.Values(nil) {
		assert.True(t, math.IsNaN(v))
	}
}

func TestMLGTemperatureUnit(t *testing.T) {
	for _, tc := range []struct {
		info        string
		celsius, ok bool
		name        string
	}{
		{name: "celsius", info: `<setting name="CELSIUS" value="CELSIUS"/>`, celsius: true, ok: true},
		{name: "fahrenheit", info: `<settings><setting name="FAHRENHEIT" value="FAHRENHEIT"/></settings>`, celsius: false, ok: true},
		{name: "none", info: `<setting name="AFR" value="AFR"/> CELSIUS FAHRENHEIT`},
		{name: "both", info: `<setting name="CELSIUS"/><setting name="FAHRENHEIT"/>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := newMLGDecoder(bytes.NewReader(mlgSynthetic(2, tc.info).bytes()), "t.mlg")
			require.NoError(t, err)
			celsius, ok := d.TemperatureUnit()
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.celsius, celsius)
		})
	}
}

// The scanner finds a setting split across chunks at any point.
func TestMLGTempScannerChunks(t *testing.T) {
	text := []byte(`xx <setting name="FAHRENHEIT" value="FAHRENHEIT"/> yy`)
	for k := range len(text) + 1 {
		for j := k; j <= len(text); j++ {
			var s mlgTempScanner
			s.feed(text[:k])
			s.feed(text[k:j])
			s.feed(text[j:])
			require.True(t, s.fahr, "split at %d, %d", k, j)
			require.False(t, s.celsius)
		}
	}
	var s mlgTempScanner
	for i := range text {
		s.feed(text[i : i+1])
	}
	assert.True(t, s.fahr)
}

// Only the first 1 MiB of the info block is kept, but all of it is scanned.
func TestMLGInfoBounded(t *testing.T) {
	info := strings.Repeat("a", mlgMaxInfo+mlgBufSize/2+7) + `<setting name="FAHRENHEIT" value="FAHRENHEIT"/>` + strings.Repeat("b", 3*mlgBufSize)
	f := mlgSynthetic(2, info)
	d, err := newMLGDecoder(iotest.HalfReader(bytes.NewReader(f.bytes())), "big.mlg")
	require.NoError(t, err)
	assert.Len(t, d.Info(), mlgMaxInfo)
	celsius, ok := d.TemperatureUnit()
	assert.True(t, ok)
	assert.False(t, celsius)
	require.NoError(t, d.Next())
	assert.Equal(t, 0.125, d.Value(0))
}

// ISO-8859-1 names and units come out as UTF-8.
func TestMLGLatin1(t *testing.T) {
	f := &mlgTestFile{version: 2, fields: []mlgTestField{{typ: mlgU08, name: "IAT", units: "\xb0F", scale: 1}},
		info: "caf\xe9", blocks: []mlgTestBlock{{raw: []float64{70}}}}
	d, err := newMLGDecoder(bytes.NewReader(f.bytes()), "l1.mlg")
	require.NoError(t, err)
	assert.Equal(t, "°F", d.Fields()[0].Units)
	assert.Equal(t, "café", d.Info())
}

// mlgErrAt checks that err is a *ParseError at offset off of file name that
// wraps every error of is.
func mlgErrAt(t *testing.T, err error, name string, off int64, is ...error) *ParseError {
	t.Helper()
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, name, pe.File)
	assert.Equal(t, off, pe.Offset, "offset in %v", err)
	for _, e := range is {
		assert.ErrorIs(t, err, e)
	}
	return pe
}

func TestMLGHeaderErrors(t *testing.T) {
	good := mlgSynthetic(2, "info text")
	goodV1 := mlgSynthetic(1, "info text")
	_, _, fieldsEnd, infoStart, dataBegin := good.layout()
	put16 := func(at int, v uint16) func([]byte) []byte {
		return func(b []byte) []byte { binary.BigEndian.PutUint16(b[at:], v); return b }
	}
	put32 := func(at int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { binary.BigEndian.PutUint32(b[at:], v); return b }
	}
	field := func(i int) int { return mlgHeaderV2 + i*mlgFieldV2 }
	for _, tc := range []struct {
		name   string
		file   *mlgTestFile
		mutate func([]byte) []byte
		off    int64
		column string
		is     []error
	}{
		{name: "empty", mutate: func([]byte) []byte { return nil }, off: 0, is: []error{io.ErrUnexpectedEOF}},
		{name: "magic only", mutate: func(b []byte) []byte { return b[:6] }, off: 0, is: []error{io.ErrUnexpectedEOF}},
		{name: "bad magic", mutate: func(b []byte) []byte { b[4] = 'X'; return b }, off: 0},
		{name: "magic without NUL", mutate: func(b []byte) []byte { b[5] = ' '; return b }, off: 0},
		{name: "version 3", mutate: put16(6, 3), off: 6},
		{name: "version 0", mutate: put16(6, 0), off: 6},
		{name: "short header", mutate: func(b []byte) []byte { return b[:20] }, off: 8, is: []error{io.ErrUnexpectedEOF}},
		{name: "no fields", mutate: put16(22, 0), off: 22},
		{name: "data inside fields", mutate: put32(16, uint32(fieldsEnd-1)), off: 16},
		{name: "info inside fields", mutate: put32(12, 30), off: 12},
		{name: "info after data", mutate: put32(12, uint32(dataBegin+1)), off: 12},
		{name: "unknown type", mutate: func(b []byte) []byte { b[field(2)] = 8; return b }, off: int64(field(2)), column: "TPS"},
		{name: "type 255", mutate: func(b []byte) []byte { b[field(13)] = 255; return b }, off: int64(field(13)), column: "Lambda"},
		{name: "NaN scale", mutate: put32(field(1)+46, 0x7fc00000), off: int64(field(1)), column: "RPM"},
		{name: "Inf transform", mutate: put32(field(1)+50, 0x7f800000), off: int64(field(1)), column: "RPM"},
		{name: "record too short", mutate: put16(20, 10), off: int64(field(5)), column: "rpm/s"},
		{name: "record too long", mutate: put16(20, uint16(good.recordLen()+1)), off: 20},
		{name: "field table cut", mutate: func(b []byte) []byte { return b[:field(3)+10] }, off: int64(field(3)), is: []error{io.ErrUnexpectedEOF}},
		{name: "bit names cut", mutate: func(b []byte) []byte { return b[:fieldsEnd+3] }, off: int64(fieldsEnd + 3), is: []error{io.ErrUnexpectedEOF}},
		{name: "info cut", mutate: func(b []byte) []byte { return b[:infoStart+4] }, off: int64(infoStart + 4), is: []error{io.ErrUnexpectedEOF}},
		{name: "huge claims", mutate: func(b []byte) []byte {
			b = put16(22, 65535)(b)
			b = put32(12, 0)(b)
			b = put32(16, 0xffffffff)(b)
			return put16(20, 65535)(b)[:field(len(mlgAllTypes))]
		}, off: int64(field(len(mlgAllTypes))), is: []error{io.ErrUnexpectedEOF}},
		{name: "v1 record length", file: goodV1, mutate: put16(18, 1), off: mlgHeaderV1, column: "Time"},
		{name: "v1 no fields", file: goodV1, mutate: put16(20, 0), off: 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := good
			if tc.file != nil {
				f = tc.file
			}
			data := tc.mutate(f.bytes())
			d, err := newMLGDecoder(bytes.NewReader(data), "bad.mlg")
			require.Error(t, err)
			require.Nil(t, d)
			pe := mlgErrAt(t, err, "bad.mlg", tc.off, append([]error{ErrBadMLG}, tc.is...)...)
			assert.Equal(t, tc.column, pe.Column)
			assert.NotEmpty(t, err.Error())
		})
	}
}

func TestMLGDataErrors(t *testing.T) {
	f := mlgSynthetic(2, "")
	data := f.bytes()
	_, _, _, _, dataBegin := f.layout()
	blockLen := mlgBlockHeader + f.recordLen() + 1
	markerLen := mlgBlockHeader + mlgMarkerLen
	lastRec := dataBegin + 3*markerLen + 2*blockLen // the third record
	endMark := lastRec + blockLen                   // the final marker

	open := func(b []byte) *mlgDecoder {
		d, err := newMLGDecoder(bytes.NewReader(b), "d.mlg")
		require.NoError(t, err)
		return d
	}
	// next2 reads the first two records.
	next2 := func(d *mlgDecoder) {
		require.NoError(t, d.Next())
		require.NoError(t, d.Next())
	}
	sticky := func(d *mlgDecoder, err error) {
		assert.Equal(t, err, d.Next(), "the error sticks")
		assert.True(t, math.IsNaN(d.Value(0)))
	}

	t.Run("record cut", func(t *testing.T) {
		for _, cut := range []int{1, 3, 4, 5, blockLen - 1} {
			d := open(data[:lastRec+cut])
			next2(d)
			err := d.Next()
			mlgErrAt(t, err, "d.mlg", int64(lastRec), ErrBadMLG, io.ErrUnexpectedEOF)
			assert.Equal(t, int64(lastRec), d.Offset())
			sticky(d, err)
		}
	})
	t.Run("marker cut", func(t *testing.T) {
		d := open(data[:endMark+10])
		next2(d)
		require.NoError(t, d.Next())
		err := d.Next()
		mlgErrAt(t, err, "d.mlg", int64(endMark), ErrBadMLG, io.ErrUnexpectedEOF)
		sticky(d, err)
	})
	t.Run("unknown block type", func(t *testing.T) {
		b := bytes.Clone(data)
		b[lastRec] = 7
		d := open(b)
		next2(d)
		err := d.Next()
		mlgErrAt(t, err, "d.mlg", int64(lastRec), ErrBadMLG)
		assert.NotErrorIs(t, err, io.ErrUnexpectedEOF)
		sticky(d, err)
	})
	t.Run("bad checksum", func(t *testing.T) {
		g := mlgSynthetic(2, "")
		g.blocks[4].badSum = true // the second record
		d := open(g.bytes())
		require.NoError(t, d.Next())
		err := d.Next()
		mlgErrAt(t, err, "d.mlg", int64(dataBegin+3*markerLen+blockLen), ErrMLGChecksum)
		assert.NotErrorIs(t, err, ErrBadMLG)
		assert.Equal(t, int64(1), d.BadChecksums())
		assert.Equal(t, 65535.0, d.Value(1), "the record stays readable")
		require.NoError(t, d.Next(), "decoding goes on")
		assert.Equal(t, 0.0, d.Value(1))
		assert.Equal(t, io.EOF, d.Next())
		assert.Equal(t, int64(3), d.Records())
		assert.Equal(t, int64(1), d.BadChecksums())
	})
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		d, err := newMLGDecoder(io.MultiReader(bytes.NewReader(data[:lastRec+7]), iotest.ErrReader(boom)), "d.mlg")
		require.NoError(t, err)
		next2(d)
		err = d.Next()
		mlgErrAt(t, err, "d.mlg", int64(lastRec+7), boom)
		sticky(d, err)
		_, err = newMLGDecoder(io.MultiReader(bytes.NewReader(data[:100]), iotest.ErrReader(boom)), "d.mlg")
		mlgErrAt(t, err, "d.mlg", 100, boom)
	})
}

// Steady-state decoding allocates nothing.
func TestMLGZeroAllocs(t *testing.T) {
	d, err := newMLGDecoder(mlgCycle(t, mlgSynthetic(2, "x")), "cycle.mlg")
	require.NoError(t, err)
	vals := make([]float64, len(mlgAllTypes))
	allocs := testing.AllocsPerRun(1000, func() {
		if err := d.Next(); err != nil {
			t.Fatal(err)
		}
		vals = d.Values(vals)
		_ = d.Value(3)
	})
	assert.Zero(t, allocs)
	assert.Positive(t, d.Markers())
}

// mlgCycle returns a reader of f's header followed by its data blocks
// repeated without end.
func mlgCycle(tb testing.TB, f *mlgTestFile) io.Reader {
	tb.Helper()
	data := f.bytes()
	_, _, _, _, dataBegin := f.layout()
	return io.MultiReader(bytes.NewReader(data[:dataBegin]), &cycleReader{b: data[dataBegin:]})
}

// cycleReader repeats b forever.
type cycleReader struct {
	b   []byte
	off int
}

func (c *cycleReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], c.b[c.off:])
		n += k
		c.off = (c.off + k) % len(c.b)
	}
	return n, nil
}

// csvDecimals returns the number of decimals printed in s.
func csvDecimals(s string) int {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}

// Every value of the Passat log equals TunerStudio's CSV export of it to the
// CSV's printed precision.
func TestMLGPassatMatchesCSV(t *testing.T) {
	dir := shareddata.Dir(t, "reallogs")
	csvData, err := os.ReadFile(filepath.Join(dir, csvPassat))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimRight(string(csvData), "\r\n"), "\n")
	split := func(l string) []string {
		cells := strings.Split(strings.TrimRight(l, "\r"), ";")
		for i, c := range cells {
			cells[i] = strings.Trim(c, `"`)
		}
		return cells
	}
	headers, units, rows := split(lines[0]), split(lines[1]), lines[2:]
	require.Len(t, rows, 2700)

	fh, err := os.Open(filepath.Join(dir, mlgPassat))
	require.NoError(t, err)
	defer fh.Close()
	d, err := newMLGDecoder(fh, mlgPassat)
	require.NoError(t, err)
	assert.Equal(t, 2, d.Version())
	assert.Equal(t, time.Date(2025, 12, 2, 10, 47, 38, 0, time.UTC), d.Timestamp())
	assert.True(t, strings.HasPrefix(d.Info(), "\"speeduino 202501: Speeduino 2025.01.6\"\n\"Capture Date: Tue Dec 02 10:47:38 GMT 2025"), d.Info()[:100])
	assert.True(t, strings.HasSuffix(d.Info(), "</msq>\r\n"))
	celsius, ok := d.TemperatureUnit()
	assert.True(t, ok, "the tune's settings name the unit")
	assert.True(t, celsius, "CLT 93-107 is °C")

	fields := d.Fields()
	require.Len(t, fields, 76)
	require.Len(t, headers, 76)
	first := split(rows[0])
	for i, f := range fields {
		assert.Equal(t, headers[i], f.Name, "field %d", i)
		assert.Equal(t, units[i], f.Units, "field %d", i)
		if !f.Type.isBits() {
			assert.Equal(t, csvDecimals(first[i]), int(f.Digits), "digits of %q", f.Name)
		}
	}
	bits := fields[70]
	assert.Equal(t, mlgBitsU08, bits.Type)
	assert.Equal(t, "", bits.Name)
	assert.Equal(t, []string{"Engine Prot. RPM", "Engine Prot. CLT"}, bits.BitNames)
	assert.Equal(t, uint8(2), bits.DisplayStyle)
	assert.Equal(t, 0.5, fields[5].Scale, "TPS")
	assert.Equal(t, 0.1, fields[6].Scale, "AFR: 0.1, not float32 0.1")

	worst := make([]float64, len(fields))
	var vals []float64
	prev := int64(-1)
	for k, row := range rows {
		require.NoError(t, d.Next(), "record %d", k)
		require.Greater(t, d.Offset(), prev)
		prev = d.Offset()
		cells := split(row)
		require.Len(t, cells, len(fields), "CSV row %d", k)
		vals = d.Values(vals)
		for i, c := range cells {
			want, err := strconv.ParseFloat(c, 64)
			require.NoError(t, err, "CSV row %d col %d", k, i)
			diff := math.Abs(vals[i] - want)
			tol := 0.5*math.Pow10(-csvDecimals(c)) + 1e-6*max(1, math.Abs(want))
			if diff > tol {
				t.Fatalf("record %d %q: decoded %v, CSV %q (diff %g > %g)", k, fields[i].Name, vals[i], c, diff, tol)
			}
			worst[i] = max(worst[i], diff)
		}
	}
	assert.Equal(t, io.EOF, d.Next())
	assert.Equal(t, int64(2700), d.Records())
	assert.Zero(t, d.Markers())
	assert.Zero(t, d.BadChecksums())
	for i, w := range worst {
		if w > 0.01 {
			t.Logf("largest difference of %q: %.4g", fields[i].Name, w)
		}
	}
}

// The Impreza log decodes cleanly, with the ranges of SOURCES.md.
func TestMLGImprezaSane(t *testing.T) {
	dir := shareddata.Dir(t, "reallogs")
	fh, err := os.Open(filepath.Join(dir, mlgImpreza))
	require.NoError(t, err)
	defer fh.Close()
	d, err := newMLGDecoder(fh, mlgImpreza)
	require.NoError(t, err)
	assert.Equal(t, time.Date(2024, 7, 18, 0, 10, 20, 0, time.UTC), d.Timestamp())
	celsius, ok := d.TemperatureUnit()
	assert.True(t, ok)
	assert.False(t, celsius, "FAHRENHEIT: CLT 105.8-109.4 is °F")
	fields := d.Fields()
	require.Len(t, fields, 57)
	assert.Equal(t, []string{"Engine Prot. RPM", "Engine Prot. MAP", "Engine Prot. CLT"}, fields[51].BitNames)
	idx := map[string]int{}
	for i, f := range fields {
		idx[f.Name] = i
	}
	ranges := map[string][2]float64{
		"Time": {0, 30.05}, "RPM": {0, 1980}, "MAP": {29, 99}, "TPS": {0.5, 15},
		"AFR": {10.7, 19.7}, "Lambda": {0.728, 1.34}, "AFR Target": {19.7, 19.7},
		"VE _Current": {32, 192}, "Advance _Current": {-10, 9}, "Boost PSI": {-9.9, 0.3},
		"IAT": {50, 59}, "CLT": {105.8, 109.4}, "Battery V": {10.9, 13.7},
	}
	lo, hi := map[string]float64{}, map[string]float64{}
	for name := range ranges {
		require.Contains(t, idx, name)
		lo[name], hi[name] = math.Inf(1), math.Inf(-1)
	}
	n := 0
	prevTime := math.Inf(-1)
	for {
		err := d.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		n++
		for i := range fields {
			v := d.Value(i)
			require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "record %d field %q", n, fields[i].Name)
		}
		for name := range ranges {
			v := d.Value(idx[name])
			lo[name], hi[name] = min(lo[name], v), max(hi[name], v)
		}
		tm := d.Value(idx["Time"])
		assert.GreaterOrEqual(t, tm, prevTime, "Time goes forward")
		prevTime = tm
	}
	assert.Equal(t, 453, n)
	assert.Zero(t, d.BadChecksums())
	for name, r := range ranges {
		// SOURCES.md prints the ranges to about the fields' digits.
		tol := 0.5*math.Pow10(-int(fields[idx[name]].Digits)) + 0.0051
		assert.InDelta(t, r[0], lo[name], tol, "min of %s", name)
		assert.InDelta(t, r[1], hi[name], tol, "max of %s", name)
	}
}
