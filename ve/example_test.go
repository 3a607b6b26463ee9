package ve_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/ve"
)

// A cell that reads 14.0 against a 13.0 target is lean: it needs 14/13 of
// its fuel, a +7.7 % correction, which a 7 % clamp limits to +7 %.
func ExampleNew() {
	layout := dyno.Layout{Name: "hold", Cylinders: 1, Channels: dyno.NewChannelSet(dyno.ChanRPM, dyno.ChanMAP, dyno.ChanAFR, dyno.ChanAFRCommanded)}
	var samples []dyno.Sample
	for i := 0; i < 50; i++ {
		s := dyno.NewSample()
		s.Time = time.Duration(i) * 20 * time.Millisecond
		s.RPM, s.MAP = 3000, 80
		s.AFR[dyno.Front], s.AFRCommanded[dyno.Front] = 14.0, 13.0
		samples = append(samples, s)
	}
	a, err := ve.New(ve.Options{Attribution: ve.NearestCell, ClampPercent: 7})
	if err != nil {
		panic(err)
	}
	res, err := a.Analyze(context.Background(), dyno.NewSliceSource(layout, samples))
	if err != nil {
		panic(err)
	}
	front := res.Cylinder(dyno.Front)
	i, j := ve.Nearest(res.Grid.RPM, 3000), ve.Nearest(res.Grid.MAP, 80)
	cell := front.Cell(i, j)
	fmt.Printf("raw %.4f, applied %.4f, %d hits, confidence %s, clamped %v\n",
		cell.Multiplier, front.Correction.Get(i, j), cell.Hits, cell.Confidence, cell.Clamped)
	// Output:
	// raw 1.0769, applied 1.0700, 50 hits, confidence high, clamped true
}

// Apply and Rollback are exact inverses, and the manifest proves it.
func ExampleApply() {
	base, _ := ve.ReadTableCSV(strings.NewReader("RPM,50,80\n2000,61.5,70.25\n3000,64.0,78.75\n"), "base.csv")
	corr, _ := ve.ReadTableCSV(strings.NewReader("RPM,50,80\n2000,1.02,1.0\n3000,0.97,1.1\n"), "corr.csv")
	applied, err := ve.Apply(base, corr, ve.ApplyOptions{})
	if err != nil {
		panic(err)
	}
	applied.Table.WriteCSV(os.Stdout, ve.CSVFormat{Cell: ve.CellFormat{Decimals: 3}})
	for _, c := range applied.Diff {
		fmt.Printf("%v/%v: %v -> %v [%s]\n", c.RPM, c.MAP, c.Before, c.After, c.Limited)
	}
	back, err := ve.Rollback(applied.Table, applied.Effective, &applied.Manifest)
	fmt.Println("rollback exact:", err == nil && back.Equal(base))
	// Output:
	// RPM,50,80
	// 2000,62.730,70.250
	// 3000,62.080,84.263
	// 2000/50: 61.5 -> 62.73 []
	// 3000/50: 64 -> 62.08 []
	// 3000/80: 78.75 -> 84.2625 [clamp]
	// rollback exact: true
}
