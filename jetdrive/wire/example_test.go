package wire_test

import (
	"encoding/hex"
	"fmt"

	"github.com/dynoai/dynoai/jetdrive/wire"
)

func ExampleParseMessage() {
	// Spec vector V5: three values from provider 0x1A2B.
	b, _ := hex.DecodeString("021e002b1a05ffff0000d007000000c05a450100d007000000002a4200003408000000845b45")
	m, err := wire.ParseMessage(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	vals, _, _ := wire.AppendValues(nil, &m)
	fmt.Printf("%v from 0x%04X seq %d\n", m.Key, m.Host, m.Seq)
	for _, v := range vals {
		fmt.Printf("channel %d at %d ms: %g\n", v.Channel, v.TS, v.Value)
	}
	_, err = wire.ParseMessage(b[:35])
	fmt.Println(err)
	// Output:
	// ChannelValues from 0x1A2B seq 5
	// channel 0 at 2000 ms: 3500
	// channel 1 at 2000 ms: 42.5
	// channel 0 at 2100 ms: 3512.25
	// jetdrive: truncated message: ChannelValues at byte 8: need 38 bytes, have 35
}

func ExampleEncoder_ChannelInfo() {
	chans := make([]wire.ChannelDef, 42)
	for i := range chans {
		chans[i] = wire.ChannelDef{ID: uint16(i), Name: fmt.Sprintf("Channel %d", i), Unit: wire.UnitNone}
	}
	e := wire.Encoder{Host: 0x1A2B}
	pages, _ := e.ChannelInfo(wire.AllHosts, "Power Core", chans)
	for _, p := range pages {
		fmt.Println(len(p), "bytes")
	}
	// Output:
	// 1384 bytes
	// 160 bytes
}
