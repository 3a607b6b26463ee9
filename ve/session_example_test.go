package ve_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynosim"
	"github.com/dynoai/dynoai/ve"
)

// A Session is fed samples as they arrive (here from the simulator, live
// from JetDrive in the server) and asked for a snapshot at any moment.
func ExampleSession() {
	grid := ve.Grid{RPM: []float64{2000, 3000, 4000}, MAP: []float64{40, 70, 95}}
	truth := dynosim.DefaultTrueVE(dynosim.M8114(), 0)
	var ecu [2]dyno.Surface
	for c := range ecu {
		ecu[c], _ = dynosim.PerturbSurface(truth[c], grid.RPM, grid.MAP, -5, 0, 1) // the ECU's VE 5 % low: lean
	}
	sim, err := dynosim.New(dynosim.Config{Seed: 1, ECUVE: ecu, Plan: dynosim.GridPlan(grid.RPM, grid.MAP, 2*time.Second)})
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := ve.NewSession(ve.Options{Grid: grid, NoLearnDelay: true}, sim.Layout())
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	smp := dyno.NewSample()
	for sim.Next(ctx, &smp) != io.EOF {
		if err := s.Add(ctx, &smp); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := s.Close(ctx); err != nil {
		fmt.Println(err)
		return
	}
	res, _ := s.Snapshot()
	front := res.Cylinder(dyno.Front)
	fmt.Printf("front at 3000 rpm, 70 kPa: %+.0f %%\n", (front.Correction.Get(1, 1)-1)*100)
	// Output: front at 3000 rpm, 70 kPa: +5 %
}
