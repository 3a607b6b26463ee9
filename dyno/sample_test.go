package dyno

import (
	"testing"
)

func TestNewSampleIsAllMissing(t *testing.T) {
	s := NewSample()
	if Has(s.RPM) || Has(s.AFR[Front]) || Has(s.Knock[MaxCylinders-1]) || Has(s.DrumForce) {
		t.Fatalf("NewSample has a measured channel: %+v", s)
	}
	s.RPM = 0
	if !Has(s.RPM) {
		t.Fatal("a real zero must count as measured")
	}
}

func TestChannelSet(t *testing.T) {
	set := NewChannelSet(ChanRPM, ChanMAP, ChanPower)
	if !set.Has(ChanPower) || set.Has(ChanTorque) {
		t.Fatalf("set %v: wrong membership", set)
	}
	if got, want := set.String(), "rpm,map,power"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if got := Channel(200).String(); got != "channel(200)" {
		t.Fatalf("unknown channel name = %q", got)
	}
	if len(Channels()) != int(numChannels) {
		t.Fatal("Channels() misses some")
	}
}

func TestSliceSourceAndCollect(t *testing.T) {
	in := []Sample{NewSample(), NewSample()}
	in[0].RPM, in[1].RPM = 1000, 2000
	src := NewSliceSource(Layout{Name: "mem", Cylinders: 2, Channels: NewChannelSet(ChanRPM)}, in)
	got, err := Collect(t.Context(), src)
	if err != nil || len(got) != 2 || got[1].RPM != 2000 {
		t.Fatalf("Collect = %v, %v", got, err)
	}
	if src.Layout().Name != "mem" {
		t.Fatal("layout lost")
	}
}
