package dynolog

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dynoai/dynoai/internal/shareddata"
)

// mlgBenchFile returns a synthetic v2 log shaped like the Passat one: 76
// fields of the types Speeduino logs (163-byte records) and n records.
func mlgBenchFile(n int) *mlgTestFile {
	types := []mlgType{mlgU08, mlgU16, mlgF32, mlgU08, mlgS16, mlgU16, mlgF32, mlgS08}
	f := &mlgTestFile{version: 2, ts: 1764672458, info: `"synthetic"` + "\n" + `<setting name="CELSIUS" value="CELSIUS"/>`}
	size := 0
	for i := range 75 {
		t := types[i%len(types)]
		f.fields = append(f.fields, mlgTestField{typ: t, name: "F" + strconv.Itoa(i), scale: 0.1, transform: -40, digits: 1})
		size += t.size()
	}
	f.fields = append(f.fields, mlgTestField{typ: mlgBitsU08, bitNames: []string{"a", "b"}})
	raw := make([]float64, len(f.fields))
	for k := range n {
		if k%1000 == 999 {
			f.blocks = append(f.blocks, mlgTestBlock{marker: "MARK"})
		}
		for i := range raw {
			raw[i] = float64((k*31 + i*7) % 120)
		}
		f.blocks = append(f.blocks, mlgTestBlock{raw: append([]float64(nil), raw...)})
	}
	return f
}

// BenchmarkMLGDecode decodes whole logs from memory (header, info block and
// every record's every value): the real Passat log (2700 records, skipped
// without ../shared) and a synthetic one of 100 000 records; "steady"
// decodes records only, from an endless stream, to show that they cost no
// allocation.
func BenchmarkMLGDecode(b *testing.B) {
	whole := func(b *testing.B, data []byte) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		var vals []float64
		records := 0
		for b.Loop() {
			d, err := newMLGDecoder(bytes.NewReader(data), "bench.mlg")
			if err != nil {
				b.Fatal(err)
			}
			records = 0
			for d.Next() == nil {
				vals = d.Values(vals)
				records++
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*records), "ns/record")
	}
	b.Run("passat", func(b *testing.B) {
		data, err := os.ReadFile(filepath.Join(shareddata.Dir(b, "reallogs"), mlgPassat))
		if err != nil {
			b.Fatal(err)
		}
		whole(b, data)
	})
	b.Run("synthetic", func(b *testing.B) {
		whole(b, mlgBenchFile(100_000).bytes())
	})
	b.Run("steady", func(b *testing.B) {
		f := mlgBenchFile(1000)
		d, err := newMLGDecoder(mlgCycle(b, f), "bench.mlg")
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetBytes(int64(mlgBlockHeader + f.recordLen() + 1))
		vals := make([]float64, len(f.fields))
		for b.Loop() {
			if err := d.Next(); err != nil {
				b.Fatal(err)
			}
			vals = d.Values(vals)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/record")
	})
}
