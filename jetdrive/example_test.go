package jetdrive_test

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetdrive"
	"github.com/dynoai/dynoai/jetdrive/jetdrivetest"
)

func ExampleParseMessage() {
	// Spec vector V5: three values from provider 0x1A2B.
	b, _ := hex.DecodeString("021e002b1a05ffff0000d007000000c05a450100d007000000002a4200003408000000845b45")
	m, err := jetdrive.ParseMessage(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	vals, _, _ := jetdrive.AppendValues(nil, &m)
	fmt.Printf("%v from 0x%04X seq %d\n", m.Key, m.Host, m.Seq)
	for _, v := range vals {
		fmt.Printf("channel %d at %d ms: %g\n", v.Channel, v.TS, v.Value)
	}
	_, err = jetdrive.ParseMessage(b[:35])
	fmt.Println(err)
	// Output:
	// ChannelValues from 0x1A2B seq 5
	// channel 0 at 2000 ms: 3500
	// channel 1 at 2000 ms: 42.5
	// channel 0 at 2100 ms: 3512.25
	// jetdrive: truncated message: ChannelValues at byte 8: need 38 bytes, have 35
}

func ExampleEncoder_ChannelInfo() {
	chans := make([]jetdrive.ChannelDef, 42)
	for i := range chans {
		chans[i] = jetdrive.ChannelDef{ID: uint16(i), Name: fmt.Sprintf("Channel %d", i), Unit: jetdrive.UnitNone}
	}
	e := jetdrive.Encoder{Host: 0x1A2B}
	pages, _ := e.ChannelInfo(jetdrive.AllHosts, "Power Core", chans)
	for _, p := range pages {
		fmt.Println(len(p), "bytes")
	}
	// Output:
	// 1384 bytes
	// 160 bytes
}

func ExampleAutoMap() {
	chans := []jetdrive.ChannelRef{
		{Host: 0x43FD, ID: 0, Name: "Sampling", Unit: jetdrive.UnitNone},
		{Host: 0x43FD, ID: 15, Name: "Torque", Unit: jetdrive.UnitTorque},
		{Host: 0x43FD, ID: 22, Name: "Engine RPM", Unit: jetdrive.UnitEngineSpeed},
		{Host: 0x43FD, ID: 23, Name: "Wideband", Unit: jetdrive.UnitNone},
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
		[]jetdrive.ChannelDef{
			{ID: 0, Name: "Engine RPM", Unit: jetdrive.UnitEngineSpeed},
			{ID: 1, Name: "Torque", Unit: jetdrive.UnitTorque}, // N·m on the wire
		})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	ts := p.Clock()
	p.Publish([]jetdrive.Value{{Channel: 0, TS: ts, Value: 3500}, {Channel: 1, TS: ts, Value: 135.58179}})

	s := dyno.NewSample()
	if err := c.Next(ctx, &s); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("rpm %.0f, torque %.1f ft·lbf\n", s.RPM, s.Torque)
	// Output:
	// rpm 3500, torque 100.0 ft·lbf
}
