package dynolog_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
)

func ExampleNewReader() {
	log := "Time,Engine RPM,MAP (psi),IAT (°F),AFR Front,AFR Rear,Torque (N·m)\n" +
		"0.00,3000,11.6,86,13.1,13.3,135.6\n" +
		"0.05,3050,11.7,86,13.0,,136.0\n"
	r, err := dynolog.NewReader(strings.NewReader(log), "pull.csv", dynolog.ReadOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	l := r.Layout()
	fmt.Println(l.Format, l.Cylinders, l.Channels)
	s := dyno.NewSample()
	for {
		err := r.Next(context.Background(), &s)
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("t=%v rpm=%.0f map=%.1f kPa iat=%.0f °C afr=%.1f/%.1f torque=%.1f ft·lb\n",
			s.Time, s.RPM, s.MAP, s.IAT, s.AFR[dyno.Front], s.AFR[dyno.Rear], s.Torque)
	}
	// Output:
	// csv 2 time,rpm,map,afr,torque,power,iat
	// t=0s rpm=3000 map=80.0 kPa iat=30 °C afr=13.1/13.3 torque=100.0 ft·lb
	// t=50ms rpm=3050 map=80.7 kPa iat=30 °C afr=13.0/NaN torque=100.3 ft·lb
}

func ExampleReadOptions_aliases() {
	// A log with names the built-in table does not know: add aliases.
	log := "Zeit;Drehzahl;Saugrohrdruck;Lambda vorne\n0,5;3000;80;0,9\n"
	r, err := dynolog.NewReader(strings.NewReader(log), "de.csv", dynolog.ReadOptions{Aliases: []dynolog.Alias{
		{Name: "zeit", Channel: dyno.ChanTime, Unit: dyno.UnitSeconds},
		{Name: "drehzahl", Channel: dyno.ChanRPM},
		{Name: "saugrohrdruck", Channel: dyno.ChanMAP, Unit: dyno.UnitKPa},
		{Name: "lambda vorne", Channel: dyno.ChanLambda, Cyl: dyno.Front, Unit: dyno.UnitLambda},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	s := dyno.NewSample()
	if err := r.Next(context.Background(), &s); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%v %.0f rpm, %.0f kPa, lambda %.2f = AFR %.2f\n", s.Time, s.RPM, s.MAP, s.Lambda[0], s.AFR[0])
	// Output:
	// 500ms 3000 rpm, 80 kPa, lambda 0.90 = AFR 13.23
}

func ExampleMissingColumnsError() {
	_, err := dynolog.NewReader(strings.NewReader("RPM,Torque\n3000,90\n"), "dyno-only.csv",
		dynolog.ReadOptions{Required: []dyno.Channel{dyno.ChanRPM, dyno.ChanMAP}})
	var me *dynolog.MissingColumnsError
	if errors.As(err, &me) {
		fmt.Println("missing:", me.Missing)
		fmt.Println(err)
	}
	// Output:
	// missing: [map]
	// dyno-only.csv: missing required columns (format csv): map; headers found: "RPM", "Torque"
}

func ExampleNewCSVWriter() {
	layout := dyno.Layout{Cylinders: 2, Channels: dyno.NewChannelSet(dyno.ChanTime, dyno.ChanRPM, dyno.ChanMAP, dyno.ChanAFR)}
	w := dynolog.NewCSVWriter(os.Stdout, layout)
	s := dyno.NewSample()
	s.RPM, s.MAP, s.AFR[dyno.Front] = 3000, 80, 13.1
	w.WriteSample(&s)
	w.Flush()
	// Output:
	// time_s,rpm,map_kpa,afr_meas_f,afr_meas_r
	// 0,3000,80,13.1,
}

func ExampleSAEJ1349() {
	// A warm day at 1500 m.
	a := dyno.Atmosphere{BaroKPa: 84.5, TempC: 30, RelHumidity: 40}
	sae, _ := dyno.SAEJ1349(a)
	std, _ := dyno.STD(a)
	fmt.Printf("SAE %.3f, STD %.3f: 80 hp observed is %.1f hp SAE\n", sae, std, 80*sae)
	// Output:
	// SAE 1.243, STD 1.254: 80 hp observed is 99.4 hp SAE
}

func ExampleDetectPulls() {
	// One second of idle, then a 4 s sweep from 2000 to 6000 rpm at WOT.
	var samples []dyno.Sample
	for i := 0; i <= 250; i++ {
		s := dyno.NewSample()
		s.Time = time.Duration(i) * 20 * time.Millisecond
		s.RPM, s.TPS = 1000, 0
		if i >= 50 {
			s.RPM, s.TPS = 2000+float64(i-50)*20, 100
		}
		s.Torque = 100 - (s.RPM-4000)*(s.RPM-4000)/200000
		s.Power = dyno.PowerFromTorque(s.Torque, s.RPM)
		samples = append(samples, s)
	}
	layout := dyno.Layout{Channels: dyno.NewChannelSet(dyno.ChanTime, dyno.ChanRPM, dyno.ChanTPS, dyno.ChanTorque, dyno.ChanPower)}
	pulls, _ := dyno.DetectPulls(context.Background(), dyno.NewSliceSource(layout, samples), dyno.PullOptions{})
	for _, p := range pulls {
		fmt.Printf("pull %d: %v-%v, %.0f-%.0f rpm, %.1f hp @ %.0f, %.1f ft·lb @ %.0f\n", p.Number, p.Start, p.End,
			p.MinRPM, p.MaxRPM, p.Peaks.Power, p.Peaks.PowerRPM, p.Peaks.Torque, p.Peaks.TorqueRPM)
	}
	// Output:
	// pull 1: 1.5s-5s, 2500-6000 rpm, 93.0 hp @ 5580, 100.0 ft·lb @ 4000
}
