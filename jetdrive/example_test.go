package jetdrive_test

import (
	"context"
	"fmt"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/jetdrive/jetdrivetest"
	"github.com/dynoai/dynoai/jetdrive/wire"
)

func ExampleAutoMap() {
	chans := []jetdrive.ChannelRef{
		{Host: 0x43FD, ID: 0, Name: "Sampling", Unit: wire.UnitNone},
		{Host: 0x43FD, ID: 15, Name: "Torque", Unit: wire.UnitTorque},
		{Host: 0x43FD, ID: 22, Name: "Engine RPM", Unit: wire.UnitEngineSpeed},
		{Host: 0x43FD, ID: 23, Name: "Wideband", Unit: wire.UnitNone},
	}
	over := []jetdrive.Override{{Field: jetdrive.Field{Channel: dyno.ChanAFR}, Channel: "Wideband"}}
	for _, a := range jetdrive.AutoMap(chans, over) {
		fmt.Printf("%-7s <- %-10s confidence %.1f\n", a.Field, a.Source.Name, a.Confidence)
	}
	// Output:
	// afr[0]  <- Wideband   confidence 1.0
	// rpm     <- Engine RPM confidence 1.0
	// torque  <- Torque     confidence 1.0
}

func ExampleNewClient() {
	// A provider and a client on an in-memory bus; on a real network leave
	// Transport nil and set Net (for example Interface: "loopback").
	ctx := context.Background()
	var bus jetdrivetest.Bus
	c, err := jetdrive.NewClient(ctx, jetdrive.ClientConfig{Transport: bus.Endpoint(), Passive: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	p, err := jetdrive.NewProvider(ctx, jetdrive.ProviderConfig{Transport: bus.Endpoint(), HostID: 0x1A2B, Name: "Sim Dyno"},
		[]wire.ChannelDef{
			{ID: 0, Name: "Engine RPM", Unit: wire.UnitEngineSpeed},
			{ID: 1, Name: "Torque", Unit: wire.UnitTorque}, // N·m on the wire
		})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	ts := p.Clock()
	p.Publish([]wire.Value{{Channel: 0, TS: ts, Value: 3500}, {Channel: 1, TS: ts, Value: 135.58179}})

	s := dyno.NewSample()
	if err := c.Next(ctx, &s); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("rpm %.0f, torque %.1f ft·lbf\n", s.RPM, s.Torque)
	// Output:
	// rpm 3500, torque 100.0 ft·lbf
}
