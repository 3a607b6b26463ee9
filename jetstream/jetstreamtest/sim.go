package jetstreamtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynosim"
	"github.com/dynoai/dynoai/jetstream"
)

// SimulatedRun runs the dyno simulator over one wide-open-throttle pull
// with cfg (cfg.Plan nil means a pull from 1500 rpm to the profile's
// redline) and returns it as a Jetstream run: metadata whose data points,
// duration and peaks are the simulated ones, and raw data in Jetstream's
// column names (Time, Engine_RPM, MAP_kPa, Torque, AFR_Front, AFR_Rear,
// AFR_Cmd_F, AFR_Cmd_R, Spark_F, Spark_R, TPS, IAT in °F). The peaks are
// computed from the logged (noisy) torque, as Jetstream would.
func SimulatedRun(ctx context.Context, meta jetstream.RunMetadata, cfg dynosim.Config) (Run, error) {
	if cfg.Plan == nil {
		redline := cfg.Profile.RedlineRPM
		if redline == 0 {
			redline = dynosim.M8114().RedlineRPM
		}
		cfg.Plan = []dynosim.Step{dynosim.PullStep(1500, redline)}
	}
	sim, err := dynosim.New(cfg)
	if err != nil {
		return Run{}, err
	}
	var b bytes.Buffer
	b.WriteString("Time,Engine_RPM,MAP_kPa,Torque,AFR_Front,AFR_Rear,AFR_Cmd_F,AFR_Cmd_R,Spark_F,Spark_R,TPS,IAT\n")
	cell := func(v float64, prec int) string {
		if !dyno.Has(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	var s dyno.Sample
	rows := 0
	peakHP, peakTQ := 0.0, 0.0
	var last time.Duration
	for {
		err := sim.Next(ctx, &s)
		if err == io.EOF {
			break
		}
		if err != nil {
			return Run{}, err
		}
		if !dyno.Has(s.RPM) || !dyno.Has(s.Torque) {
			continue
		}
		rows++
		last = s.Time
		peakTQ = math.Max(peakTQ, s.Torque)
		peakHP = math.Max(peakHP, s.Torque*s.RPM/5252)
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", cell(s.Time.Seconds(), 3), cell(s.RPM, 1),
			cell(s.MAP, 2), cell(s.Torque, 3), cell(s.AFR[dyno.Front], 3), cell(s.AFR[dyno.Rear], 3),
			cell(s.AFRCommanded[dyno.Front], 3), cell(s.AFRCommanded[dyno.Rear], 3),
			cell(s.Spark[dyno.Front], 2), cell(s.Spark[dyno.Rear], 2), cell(s.TPS, 2),
			cell(dyno.CelsiusToFahrenheit(s.IAT), 2))
	}
	if rows == 0 {
		return Run{}, fmt.Errorf("jetstreamtest: the simulator produced no rows for %s", meta.ID)
	}
	meta.DataPoints = rows
	meta.DurationSeconds = int(math.Round(last.Seconds()))
	meta.PeakHP, meta.PeakTorque = round1(peakHP), round1(peakTQ)
	if meta.EngineType == "" {
		meta.EngineType = sim.Profile().Name
	}
	return Run{RunMetadata: meta, Data: b.Bytes()}, nil
}
