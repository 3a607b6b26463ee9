package dynolog_test

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
)

// hptHead is an HP Tuners VCM Scanner export up to its data: the preamble,
// the channel-id row, the names row and the units row.
const hptHead = "HP Tuners CSV Log File\nVersion: 1.0\n\n[Log Information]\nCreation Time: 6/5/2023 4:58:52 PM\n\n" +
	"[Channel Information]\n0,12,11,14,15,16,17\n" +
	"Offset,Engine RPM (SAE),Intake Manifold Absolute Pressure (SAE),Air-Fuel Ratio Commanded,Equivalence Ratio Commanded,Wideband AFR,Engine Coolant Temp (SAE)\n" +
	"s,rpm,psi,,λ,,°F\n\n[Channel Data]\n"

// FuzzHPTuners feeds the HP Tuners reader fuzzed exports: whole files (the
// preamble, sections, id, names and units rows all in play) and fuzzed
// data under a fixed head. Every outcome is a reader or a positioned
// error, never a panic or a hang, and the samples hold no infinities.
//
//	go test ./dyno/dynolog -run '^$' -fuzz FuzzHPTuners -fuzztime 60s
func FuzzHPTuners(f *testing.F) {
	f.Add([]byte(hptHead+"0.868,927,14.6,14.7,1,14.2,80.6\n0.992,930,14.7,14.7,∞,,80.6\n"), false)
	f.Add([]byte(hptHead+"1,1x,2\n[Marker]\n2,3\n"), false)
	f.Add([]byte("HP Tuners CSV Log File\n[Channel Information]\nOffset,RPM\ns,rpm\n[Channel Data]\n0,1000\n"), true)
	f.Add([]byte("HP Tuners CSV Log File\r\n\r\n[Channel Information]\r\n"), true)
	f.Add([]byte("\ufeffHP Tuners CSV Log File\n[Channel Information]\n1,2\n\"a,b\",c\n,\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, whole bool) {
		if !whole {
			data = append([]byte(hptHead), data...)
		}
		opts := dynolog.ReadOptions{Format: dynolog.FormatHPTuners, Required: []dyno.Channel{}, MaxBadRows: 3}
		r, err := dynolog.NewReader(bytes.NewReader(data), "fuzz.csv", opts)
		if err != nil {
			checkOpenErr(t, err)
			return
		}
		if rep := r.ChannelReport(); rep == nil || rep.Format != "hptuners" {
			t.Fatalf("report %+v", rep)
		}
		drain(t, r, len(data))
	})
}

// FuzzUnitInference gives the unit inference columns of fuzzed values
// under names with and without units, and checks what it may conclude:
// every channel used has a unit it accepts and says where the unit came
// from (an inferred one says why), its range is finite and in the
// channel's unit, and the samples read carry finite values only.
//
//	go test ./dyno/dynolog -run '^$' -fuzz FuzzUnitInference -fuzztime 60s
func FuzzUnitInference(f *testing.F) {
	f.Add(uint8(0), []byte{100, 50, 90, 95, 40, 130})
	f.Add(uint8(0xff), []byte{14, 0, 3, 200, 255, 1, 7, 7, 7})
	f.Add(uint8(0x5a), []byte("coolant near 90 in C, map in psi, lambda near 1"))
	f.Fuzz(func(t *testing.T, units uint8, vals []byte) {
		// Five columns whose names say what they are and, by the bits of
		// units, a unit that may or may not fit the values.
		names := []string{"rpm", "map", "ect", "iat", "afr"}
		labels := [][]string{{"", "(krpm)"}, {"", "(psi)", "(bar)", "(kPa)"}, {"", "(K)", "(F)", "(C)"}, {"", "(F)"}, {"", "(lambda)"}}
		shift := 0
		var head []string
		for i, n := range names {
			opts := labels[i]
			k := int(units>>shift) % len(opts)
			shift += 2
			head = append(head, strings.TrimSpace(n+" "+opts[k]))
		}
		var b strings.Builder
		b.WriteString("time," + strings.Join(head, ",") + "\n")
		// Each row's values come from the fuzz bytes, scaled to the
		// ranges a channel's candidate units span.
		scale := []float64{40, 2, 2, 2, 0.1}
		for row := 0; row*len(names) < len(vals) && row < 120; row++ {
			fmt.Fprintf(&b, "%g", float64(row)*0.05)
			for c := range names {
				v := 0.0
				if k := row*len(names) + c; k < len(vals) {
					v = float64(vals[k]) * scale[c]
				}
				fmt.Fprintf(&b, ",%g", v)
			}
			b.WriteByte('\n')
		}
		data := []byte(b.String())
		r, err := dynolog.NewReader(bytes.NewReader(data), "units.csv", dynolog.ReadOptions{Required: []dyno.Channel{}})
		if err != nil {
			checkOpenErr(t, err)
			return
		}
		rep := r.ChannelReport()
		for _, ci := range rep.Channels {
			if ci.Derived != "" || ci.Channel == dyno.ChanTime {
				continue
			}
			if !ci.Channel.Accepts(ci.Unit) {
				t.Fatalf("%v read in %v, a unit it does not accept", ci.Channel, ci.Unit)
			}
			if ci.UnitSource == "" || (ci.UnitSource == "inferred" && ci.UnitReason == "") {
				t.Fatalf("%v: unit %v with no source or reason (%q, %q)", ci.Channel, ci.Unit, ci.UnitSource, ci.UnitReason)
			}
			if math.IsNaN(ci.Min) || math.IsInf(ci.Min, 0) || math.IsNaN(ci.Max) || math.IsInf(ci.Max, 0) || ci.Min > ci.Max {
				t.Fatalf("%v: range %v..%v", ci.Channel, ci.Min, ci.Max)
			}
		}
		drain(t, r, len(data))
	})
}
