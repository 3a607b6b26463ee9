package dynolog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/dynoai/dynoai/internal/shareddata"
)

// optionalTB lets shareddata.Dir report a missing directory without
// skipping the whole fuzz target: the real log only adds seeds. Under
// DYNOAI_SHARED_REQUIRED=1 a missing directory still fails.
type optionalTB struct {
	testing.TB
	missing bool
}

// Skipf records that the directory is missing.
func (o *optionalTB) Skipf(format string, args ...any) {
	o.missing = true
	o.TB.Logf(format, args...)
}

// mlgRealSeeds returns two seeds from the Passat log when it is at hand: its
// first 1 kB (the header and the first field records), and a small log
// rebuilt from its parts: its header, ten of its field records and its bit
// field with its bit names, 200 bytes of its info block, and those fields of
// its first records, the last one cut short. (Seeds of many kB would make
// the fuzzer spend its time minimising.)
func mlgRealSeeds(tb testing.TB) [][]byte {
	o := &optionalTB{TB: tb}
	dir := shareddata.Dir(o, "reallogs")
	if o.missing {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, mlgPassat))
	if err != nil {
		tb.Fatal(err)
	}
	infoStart := int(binary.BigEndian.Uint32(data[12:]))
	dataBegin := int(binary.BigEndian.Uint32(data[16:]))
	recLen := int(binary.BigEndian.Uint16(data[20:]))
	nFields := int(binary.BigEndian.Uint16(data[22:]))
	fieldsEnd := mlgHeaderV2 + nFields*mlgFieldV2
	field := func(i int) []byte { return data[mlgHeaderV2+i*mlgFieldV2:][:mlgFieldV2] }
	offsets := make([]int, nFields+1)
	for i := range nFields {
		offsets[i+1] = offsets[i] + mlgType(field(i)[0]).size()
	}
	keep := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 70} // 70 is the bit field
	out := bytes.Clone(data[:mlgHeaderV2])
	newEnd := mlgHeaderV2 + len(keep)*mlgFieldV2
	size := 0
	for _, i := range keep {
		f := bytes.Clone(field(i))
		if mlgType(f[0]).isBits() {
			binary.BigEndian.PutUint32(f[47:], uint32(newEnd))
		}
		out = append(out, f...)
		size += offsets[i+1] - offsets[i]
	}
	out = append(out, data[fieldsEnd:infoStart]...) // the bit names
	binary.BigEndian.PutUint32(out[12:], uint32(len(out)))
	out = append(append(out, data[infoStart:infoStart+200]...), 0)
	binary.BigEndian.PutUint32(out[16:], uint32(len(out)))
	binary.BigEndian.PutUint16(out[20:], uint16(size))
	binary.BigEndian.PutUint16(out[22:], uint16(len(keep)))
	for k := range 4 {
		block := data[dataBegin+k*(mlgBlockHeader+recLen+1):]
		out = append(out, block[:mlgBlockHeader]...)
		var sum byte
		for _, i := range keep {
			for _, c := range block[mlgBlockHeader+offsets[i] : mlgBlockHeader+offsets[i+1]] {
				out = append(out, c)
				sum += c
			}
		}
		out = append(out, sum)
	}
	return [][]byte{data[:1000], out[:len(out)-7]}
}

// FuzzMLG holds that the decoder never panics or hangs on any input, that
// every error is a *ParseError inside the input, that errors stick (except
// checksum errors), that blocks move forward, that values are finite or
// NaN, and that the result does not depend on how the input is chunked.
func FuzzMLG(f *testing.F) {
	for _, v := range []int{1, 2} {
		syn := mlgSynthetic(v, `"speeduino"`+"\n"+`<setting name="FAHRENHEIT" value="FAHRENHEIT"/>`)
		f.Add(syn.bytes())
		syn.blocks[4].badSum = true
		f.Add(syn.bytes())
		syn.info = ""
		f.Add(syn.bytes())
		syn.blocks = syn.blocks[:2]
		f.Add(syn.bytes())
	}
	// A small one: minimising an interesting input costs time quadratic in
	// its length.
	small := &mlgTestFile{version: 1, fields: []mlgTestField{
		{typ: mlgS16, name: "CLT", scale: 0.1, transform: -400},
		{typ: mlgBitsU08, bitNames: []string{"a"}},
	}, blocks: []mlgTestBlock{{raw: []float64{900, 1}}, {marker: "m"}, {raw: []float64{-1, 0}}}}
	f.Add(small.bytes())
	f.Add([]byte(mlgMagic + "\x00\x02"))
	for _, s := range mlgRealSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := newMLGDecoder(bytes.NewReader(data), "fuzz.mlg")
		d2, err2 := newMLGDecoder(&chunkReader{b: data, n: 13}, "fuzz.mlg")
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("the header result depends on chunking: %v / %v", err, err2)
		}
		if err != nil {
			mlgCheckErr(t, err, len(data))
			return
		}
		if v := d.Version(); v != 1 && v != 2 {
			t.Fatalf("version %d", v)
		}
		fields := d.Fields()
		if len(fields) == 0 {
			t.Fatal("no fields")
		}
		off := 0
		for i, fd := range fields {
			if fd.Offset != off || fd.Size != fd.Type.size() || fd.Size == 0 {
				t.Fatalf("field %d: offset %d size %d, want offset %d", i, fd.Offset, fd.Size, off)
			}
			if math.IsNaN(fd.Scale) || math.IsInf(fd.Scale, 0) || math.IsNaN(fd.Transform) || math.IsInf(fd.Transform, 0) {
				t.Fatalf("field %d: scale %v transform %v", i, fd.Scale, fd.Transform)
			}
			off += fd.Size
		}
		if off != d.recLen || len(d.block) != mlgBlockHeader+off+1 {
			t.Fatalf("record length %d, fields %d, block %d", d.recLen, off, len(d.block))
		}
		if len(d.Info()) > 2*mlgMaxInfo {
			t.Fatalf("info of %d bytes", len(d.Info()))
		}
		vals := make([]float64, len(fields))
		prev := int64(-1)
		for n := 0; ; n++ {
			if n > len(data)/mlgBlockHeader+1 {
				t.Fatalf("more records (%d) than the input (%d bytes) holds", n, len(data))
			}
			err, err2 := d.Next(), d2.Next()
			if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
				t.Fatalf("Next depends on chunking: %v / %v", err, err2)
			}
			if err == io.EOF {
				if d.Offset() != int64(len(data)) {
					t.Fatalf("EOF at %d of %d bytes", d.Offset(), len(data))
				}
				return
			}
			if d.Offset() <= prev || d.Offset() != d2.Offset() {
				t.Fatalf("block offset %d after %d (chunked: %d)", d.Offset(), prev, d2.Offset())
			}
			prev = d.Offset()
			if err != nil && !errors.Is(err, ErrMLGChecksum) {
				mlgCheckErr(t, err, len(data))
				if !errors.Is(d.Next(), err) {
					t.Fatal("the error does not stick")
				}
				return
			}
			if err != nil {
				mlgCheckErr(t, err, len(data))
			}
			if end := d.Offset() + int64(len(d.block)); end > int64(len(data)) {
				t.Fatalf("record at %d ends past the input (%d bytes)", d.Offset(), len(data))
			}
			vals = d.Values(vals)
			for i, v := range vals {
				if math.IsInf(v, 0) {
					t.Fatalf("field %d: %v", i, v)
				}
				if w := d2.Value(i); math.Float64bits(v) != math.Float64bits(w) && !(math.IsNaN(v) && math.IsNaN(w)) {
					t.Fatalf("field %d: %v, chunked %v", i, v, w)
				}
			}
			if d.Markers() != d2.Markers() || d.Records() != d2.Records() {
				t.Fatal("counts depend on chunking")
			}
		}
	})
}

// chunkReader reads b at most n bytes at a time. (It is much cheaper than
// iotest.OneByteReader, which the unit tests use.)
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}

// mlgCheckErr checks that err is a *ParseError inside an input of size
// bytes.
func mlgCheckErr(t *testing.T, err error, size int) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("not a *ParseError: %v", err)
	}
	if pe.File != "fuzz.mlg" || pe.Offset < 0 || pe.Offset > int64(size) {
		t.Fatalf("bad position in %v", err)
	}
	if !errors.Is(err, ErrBadMLG) && !errors.Is(err, ErrMLGChecksum) {
		t.Fatalf("neither ErrBadMLG nor ErrMLGChecksum: %v", err)
	}
}
