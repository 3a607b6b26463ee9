package dynosim_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynosim"
)

// A WOT pull on an M8-114 whose ECU believes the front cylinder breathes
// 10 % less than it does: the front reads lean by 1/0.9, the rear is on
// target.
func ExampleNew() {
	truth := dynosim.DefaultTrueVE(dynosim.M8114(), 0)
	lowFront := dyno.SurfaceFunc(func(rpm, mapKPa float64) float64 {
		return 0.9 * truth[dyno.Front].At(rpm, mapKPa)
	})
	sim, err := dynosim.New(dynosim.Config{
		Seed:  1,
		ECUVE: [2]dyno.Surface{lowFront, nil},
		Plan:  []dynosim.Step{dynosim.PullStep(2000, 5600)},
	})
	if err != nil {
		panic(err)
	}
	var (
		s              dyno.Sample
		peakTQ, peakHP float64
		start, end     time.Duration
		at4000         dyno.Sample
	)
	for {
		err := sim.Next(context.Background(), &s)
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		if sim.Status().Settling {
			start = s.Time
			continue
		}
		end = s.Time
		peakTQ, peakHP = max(peakTQ, s.Torque), max(peakHP, s.Power)
		if s.RPM <= 4000 {
			at4000 = s
		}
	}
	fmt.Printf("%s: pull %.1f s, peak %.0f ft·lbf, %.0f hp\n", sim.Layout().Format, (end - start).Seconds(), peakTQ, peakHP)
	fmt.Printf("at %.0f rpm: target %.2f, front %.2f, rear %.2f\n",
		at4000.RPM, at4000.AFRCommanded[dyno.Front], at4000.AFR[dyno.Front], at4000.AFR[dyno.Rear])
	// Output:
	// simulator: pull 8.3 s, peak 122 ft·lbf, 110 hp
	// at 3997 rpm: target 12.50, front 13.89, rear 12.50
}
