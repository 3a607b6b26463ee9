package dyno_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
)

func TestPowerTorque(t *testing.T) {
	cases := []struct{ tq, rpm, hp float64 }{
		{5252, 1, 1},
		{100, 5252, 100},
		{88.955, 2324, 88.955 * 2324 / 5252},
		{0, 3000, 0},
		{-10, 5252, -10},
	}
	for _, c := range cases {
		assert.InDelta(t, c.hp, dyno.PowerFromTorque(c.tq, c.rpm), 1e-12)
		assert.InDelta(t, c.tq, dyno.TorqueFromPower(c.hp, c.rpm), 1e-9)
	}
	assert.False(t, dyno.Has(dyno.TorqueFromPower(50, 0)))
	assert.False(t, dyno.Has(dyno.TorqueFromPower(50, dyno.Missing)))
	assert.InDelta(t, 74.569987, dyno.KWFromHP(100), 1e-6)
	assert.InDelta(t, 100, dyno.HPFromKW(dyno.KWFromHP(100)), 1e-12)
	assert.InDelta(t, 135.581795, dyno.NmFromFtLb(100), 1e-6)
	assert.InDelta(t, 100, dyno.FtLbFromNm(dyno.NmFromFtLb(100)), 1e-12)
}

func TestDrumPowerSpecVector(t *testing.T) {
	// jetstream-dyno spec §5.1: F = 100 lb, drum 3000 rpm, C = 4.673 ft.
	assert.InDelta(t, 42.4818182, dyno.DrumPower(100, 4.673, 3000), 1e-7)
	assert.Equal(t, 0.0, dyno.DrumPower(0, 4.673, 3000))
	assert.Equal(t, 0.0, dyno.DrumPower(100, 4.673, -1))
	assert.Equal(t, 0.0, dyno.DrumPower(dyno.Missing, 4.673, 3000))
}

func TestCorrectionFactors(t *testing.T) {
	cases := []struct {
		name     string
		a        dyno.Atmosphere
		sae, std float64
	}{
		// SAE J1349's own reference day: 99 kPa dry air at 25 °C.
		{"J1349 reference", dyno.Atmosphere{BaroKPa: 99, TempC: 25}, 1, 29.92 / (99 / dyno.KPaPerInHg) * math.Sqrt((77+460)/520.0)},
		// STD's reference day: 29.92 inHg dry at 60 °F.
		{"STD reference", dyno.Atmosphere{BaroKPa: 29.92 * dyno.KPaPerInHg, TempC: (60 - 32) * 5 / 9.0},
			1.18*(99/(29.92*dyno.KPaPerInHg))*math.Sqrt((15.5555555555556+273)/298) - 0.18, 1},
		// Humid: 50 % at 30 °C, vapour pressure 0.5 × 4.2431 kPa (Magnus).
		{"humid", dyno.Atmosphere{BaroKPa: 100, TempC: 30, RelHumidity: 50},
			1.18*(99/(100-0.5*0.61094*math.Exp(17.625*30/(30+243.04))))*math.Sqrt(303.0/298) - 0.18,
			29.92 / ((100 - 0.5*0.61094*math.Exp(17.625*30/(30+243.04))) / dyno.KPaPerInHg) * math.Sqrt((86+460)/520.0)},
		// A measured vapour pressure overrides the humidity.
		{"vapour", dyno.Atmosphere{BaroKPa: 84.3, TempC: 32.2, RelHumidity: 90, VaporKPa: 1.2},
			1.18*(99/83.1)*math.Sqrt(305.2/298) - 0.18,
			29.92 / (83.1 / dyno.KPaPerInHg) * math.Sqrt((89.96+460)/520.0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sae, err := dyno.SAEJ1349(c.a)
			require.NoError(t, err)
			assert.InDelta(t, c.sae, sae, 1e-9)
			std, err := dyno.STD(c.a)
			require.NoError(t, err)
			assert.InDelta(t, c.std, std, 1e-9)
		})
	}
	// Altitude (5000 ft, 84.3 kPa) raises both; STD runs above SAE.
	a := dyno.Atmosphere{BaroKPa: 84.3, TempC: 20, RelHumidity: 30}
	sae, _ := dyno.SAEJ1349(a)
	std, _ := dyno.STD(a)
	assert.Greater(t, sae, 1.15)
	assert.Greater(t, std, sae)

	for _, bad := range []dyno.Atmosphere{
		{BaroKPa: 0, TempC: 20}, {BaroKPa: -1, TempC: 20}, {BaroKPa: dyno.Missing, TempC: 20},
		{BaroKPa: 100, TempC: -300}, {BaroKPa: 100, TempC: dyno.Missing}, {BaroKPa: 100, TempC: 20, RelHumidity: 120},
		{BaroKPa: 3, TempC: 40, RelHumidity: 100}, {BaroKPa: 100, TempC: 20, VaporKPa: -2},
		{BaroKPa: math.Inf(1), TempC: 20},
	} {
		_, err := dyno.SAEJ1349(bad)
		assert.ErrorIs(t, err, dyno.ErrBadAtmosphere, "%+v", bad)
		_, err = dyno.STD(bad)
		assert.ErrorIs(t, err, dyno.ErrBadAtmosphere, "%+v", bad)
	}
}

func TestSaturationVaporPressure(t *testing.T) {
	// Reference table values (kPa), within the formula's stated 0.4 %.
	for tc, want := range map[float64]float64{0: 0.6113, 20: 2.3389, 25: 3.1699, 40: 7.3849} {
		assert.InEpsilon(t, want, dyno.SaturationVaporPressure(tc), 0.004, "%v °C", tc)
	}
}
