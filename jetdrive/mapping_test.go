package jetdrive

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetdrive/wire"
)

func refs(host uint16, defs ...wire.ChannelDef) []ChannelRef {
	var out []ChannelRef
	for _, d := range defs {
		out = append(out, ChannelRef{Host: host, Provider: "P", ID: d.ID, Name: d.Name, Unit: d.Unit})
	}
	return out
}

func mapped(as []Assignment) map[string]string {
	out := map[string]string{}
	for _, a := range as {
		out[a.Field.String()] = a.Source.Name
	}
	return out
}

func TestAutoMap(t *testing.T) {
	tests := []struct {
		name  string
		chans []ChannelRef
		want  map[string]string
	}{
		{
			// The real Power Core channel list of the predecessor's saved
			// mapping: it mapped Sampling to spark, TCP TX to knock and the
			// internal temperatures to ECT/IAT. None of that here.
			name: "real Power Core",
			chans: refs(0x43FD,
				wire.ChannelDef{ID: 0, Name: "Sampling", Unit: wire.UnitNone},
				wire.ChannelDef{ID: 2, Name: "TCP TX kB/s", Unit: wire.UnitNone},
				wire.ChannelDef{ID: 3, Name: "Internal Temp 1", Unit: wire.UnitTemperature},
				wire.ChannelDef{ID: 11, Name: "Internal Temp 2", Unit: wire.UnitTemperature},
				wire.ChannelDef{ID: 15, Name: "Torque", Unit: wire.UnitTorque},
				wire.ChannelDef{ID: 16, Name: "Power", Unit: wire.UnitPower},
				wire.ChannelDef{ID: 22, Name: "Engine RPM", Unit: wire.UnitEngineSpeed},
				wire.ChannelDef{ID: 39, Name: "Pressure", Unit: wire.UnitPressure}),
			want: map[string]string{"rpm": "Engine RPM", "torque": "Torque", "power": "Power", "baro": "Pressure"},
		},
		{
			name: "DynoAI simulator names",
			chans: refs(1,
				wire.ChannelDef{ID: 42, Name: "Digital RPM 1", Unit: wire.UnitEngineSpeed},
				wire.ChannelDef{ID: 43, Name: "Digital RPM 2", Unit: wire.UnitEngineSpeed},
				wire.ChannelDef{ID: 39, Name: "Force Drum 1", Unit: wire.UnitForce},
				wire.ChannelDef{ID: 40, Name: "Acceleration", Unit: wire.UnitAcceleration},
				wire.ChannelDef{ID: 23, Name: "Air/Fuel Ratio 1", Unit: wire.UnitAFR},
				wire.ChannelDef{ID: 28, Name: "Air/Fuel Ratio 2", Unit: wire.UnitAFR},
				wire.ChannelDef{ID: 100, Name: "Torque", Unit: wire.UnitTorque},
				wire.ChannelDef{ID: 101, Name: "Horsepower", Unit: wire.UnitPower},
				wire.ChannelDef{ID: 102, Name: "MAP kPa", Unit: wire.UnitPressure},
				wire.ChannelDef{ID: 103, Name: "TPS", Unit: wire.UnitPercentage},
				wire.ChannelDef{ID: 104, Name: "IAT", Unit: wire.UnitTemperature},
				wire.ChannelDef{ID: 105, Name: "VBatt", Unit: wire.UnitVolts}),
			want: map[string]string{"rpm": "Digital RPM 1", "afr[0]": "Air/Fuel Ratio 1", "afr[1]": "Air/Fuel Ratio 2",
				"torque": "Torque", "power": "Horsepower", "map": "MAP kPa", "tps": "TPS", "iat": "IAT", "drum_force": "Force Drum 1"},
		},
		{
			name: "Engine RPM beats Digital RPM; AFR target is not measured AFR",
			chans: refs(1,
				wire.ChannelDef{ID: 1, Name: "Digital RPM 1", Unit: wire.UnitEngineSpeed},
				wire.ChannelDef{ID: 2, Name: "Engine RPM", Unit: wire.UnitEngineSpeed},
				wire.ChannelDef{ID: 3, Name: "AFR Target", Unit: wire.UnitAFR},
				wire.ChannelDef{ID: 4, Name: "AFR Meas F", Unit: wire.UnitAFR},
				wire.ChannelDef{ID: 5, Name: "AFR Meas R", Unit: wire.UnitAFR},
				wire.ChannelDef{ID: 6, Name: "Lambda 1", Unit: wire.UnitLambda},
				wire.ChannelDef{ID: 7, Name: "Spark Advance", Unit: wire.UnitNone},
				wire.ChannelDef{ID: 8, Name: "Knock Retard", Unit: wire.UnitNone},
				wire.ChannelDef{ID: 9, Name: "Coolant Temp", Unit: wire.UnitTemperature},
				wire.ChannelDef{ID: 10, Name: "Humidity", Unit: wire.UnitPercentage}),
			want: map[string]string{"rpm": "Engine RPM", "afr[0]": "AFR Meas F", "afr[1]": "AFR Meas R",
				"afr_commanded[0]": "AFR Target", "lambda[0]": "Lambda 1", "spark[0]": "Spark Advance",
				"knock[0]": "Knock Retard", "ect": "Coolant Temp"},
		},
		{
			name:  "nothing recognisable",
			chans: refs(1, wire.ChannelDef{ID: 1, Name: "Sampling", Unit: wire.UnitNone}, wire.ChannelDef{ID: 2, Name: "Channel 7", Unit: wire.Unit(99)}),
			want:  map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AutoMap(tt.chans, nil)
			assert.Equal(t, tt.want, mapped(got))
			for _, a := range got {
				assert.GreaterOrEqual(t, a.Confidence, 0.5)
				assert.LessOrEqual(t, a.Confidence, 1.0)
			}
		})
	}
}

func TestAutoMapConfidenceAndOverrides(t *testing.T) {
	chans := refs(1,
		wire.ChannelDef{ID: 1, Name: "Engine RPM", Unit: wire.UnitEngineSpeed},
		wire.ChannelDef{ID: 2, Name: "Speedo", Unit: wire.UnitEngineSpeed},
		wire.ChannelDef{ID: 3, Name: "Wideband", Unit: wire.UnitNone})
	got := AutoMap(chans, nil)
	require.Len(t, got, 1)
	assert.Equal(t, 1.0, got[0].Confidence, "unit 0.5 + name 0.3 + best 0.2")

	// The user says Wideband is the front AFR and Speedo the RPM.
	ov := []Override{
		{Field: Field{Channel: dyno.ChanAFR}, Channel: "wideband", Convert: func(v float64) float64 { return v * 14.7 }},
		{Field: Field{Channel: dyno.ChanRPM}, Host: 1, Channel: "Speedo"},
		{Field: Field{Channel: dyno.ChanMAP}, Host: 2, Channel: "Engine RPM"}, // wrong host: no effect
	}
	got = AutoMap(chans, ov)
	m := mapped(got)
	assert.Equal(t, map[string]string{"afr[0]": "Wideband", "rpm": "Speedo"}, m)
	for _, a := range got {
		assert.True(t, a.Override)
		assert.Equal(t, 1.0, a.Confidence)
	}
	assert.InDelta(t, 14.7, got[0].Convert(1), 1e-12)

	// A unit-only match gets a warning.
	got = AutoMap(refs(1, wire.ChannelDef{ID: 1, Name: "Chan A", Unit: wire.UnitTorque}), nil)
	require.Len(t, got, 1)
	assert.Equal(t, 0.7, got[0].Confidence)
}

func TestFieldAccess(t *testing.T) {
	s := dyno.NewSample()
	for _, f := range []Field{{dyno.ChanRPM, 0}, {dyno.ChanAFR, 1}, {dyno.ChanKnock, 7}, {dyno.ChanDrumForce, 0}} {
		require.True(t, f.Valid(), f.String())
		f.Set(&s, 42)
		assert.Equal(t, 42.0, f.Get(&s))
	}
	for _, f := range []Field{{dyno.ChanTime, 0}, {dyno.ChanAFR, 8}, {dyno.ChanRPM, 1}, {dyno.Channel(200), 0}} {
		assert.False(t, f.Valid())
		f.Set(&s, 1) // ignored, no panic
		assert.True(t, !dyno.Has(f.Get(&s)))
	}
	assert.Equal(t, "afr[1]", Field{dyno.ChanAFR, 1}.String())
	assert.Equal(t, "drum_force", Field{Channel: dyno.ChanDrumForce}.String())
}
