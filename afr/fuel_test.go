package afr

import (
	"math"
	"testing"

	"github.com/dynoai/dynoai/dyno"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFuels(t *testing.T) {
	for _, f := range Fuels() {
		require.NoError(t, f.Validate(), f.Name)
		assert.InDelta(t, 1, f.Lambda(f.Stoich), 1e-15, f.Name)
		assert.InDelta(t, f.Stoich, f.AFR(1), 1e-15, f.Name)
		assert.True(t, f.ValidAFR(f.Stoich), f.Name)
		g, err := FuelByName(f.Name)
		require.NoError(t, err)
		assert.Equal(t, f, g)
	}
	assert.Equal(t, 14.7, Gasoline().Stoich)
	assert.Equal(t, 14.13, E10().Stoich)
	assert.Equal(t, 9.77, E85().Stoich)
	assert.InDelta(t, 9*9.77/14.7, E85().MinAFR, 1e-12)
	g, err := FuelByName(" Petrol ")
	require.NoError(t, err)
	assert.Equal(t, Gasoline(), g)
	_, err = FuelByName("diesel")
	assert.ErrorIs(t, err, ErrUnknownFuel)
	assert.Error(t, Fuel{Name: "x", Stoich: 14, MinAFR: 18, MaxAFR: 9, MinLambda: 0.6, MaxLambda: 1.3}.Validate())
	assert.Error(t, Fuel{Name: "x", Stoich: -1}.Validate())
}

func TestValidity(t *testing.T) {
	for _, tt := range []struct {
		afr  float64
		want bool
	}{
		{9, true}, {18, true}, {13.2, true}, {8.99, false}, {18.01, false},
		{Sentinel, false}, {math.NaN(), false}, {math.Inf(1), false},
	} {
		assert.Equal(t, tt.want, Gasoline().ValidAFR(tt.afr), "%v", tt.afr)
		if tt.want {
			assert.Equal(t, tt.afr, Gasoline().Clean(tt.afr))
		} else {
			assert.False(t, dyno.Has(Gasoline().Clean(tt.afr)))
		}
	}
	for _, tt := range []struct {
		l    float64
		want bool
	}{{0.6, true}, {1.3, true}, {0.59, false}, {1.31, false}, {math.NaN(), false}} {
		assert.Equal(t, tt.want, Gasoline().ValidLambda(tt.l), "%v", tt.l)
	}
	assert.True(t, IsSentinel(5.1))
	assert.False(t, IsSentinel(5.11))
	assert.True(t, E85().ValidAFR(6.5), "rich E85() is plausible")
	assert.False(t, Gasoline().ValidAFR(6.5))
}

func TestMeasuredAFR(t *testing.T) {
	s := dyno.NewSample()
	s.AFR[dyno.Front] = Sentinel
	s.Lambda[dyno.Front] = 0.93
	s.AFR[dyno.Rear] = 13.1
	assert.InDelta(t, 0.93*14.7, Gasoline().MeasuredAFR(&s, dyno.Front), 1e-12, "sentinel falls back to lambda")
	assert.Equal(t, 13.1, Gasoline().MeasuredAFR(&s, dyno.Rear))
	assert.False(t, dyno.Has(Gasoline().MeasuredAFR(&s, 2)))
}

func TestCalibration(t *testing.T) {
	assert.Equal(t, 13.0, Calibration{}.Apply(13))
	c, v, err := FreeAirCalibration(20.6)
	require.NoError(t, err)
	assert.Equal(t, Good, v)
	assert.InDelta(t, 0.3, c.Offset, 1e-12)
	assert.InDelta(t, 13.3, c.Apply(13), 1e-12)
	assert.InDelta(t, 14.7, Calibration{}.ApplyRaw(14.7*409.6), 1e-12)
	for _, tt := range []struct {
		r float64
		v Verdict
	}{{20.5, Good}, {21.3, Good}, {20.0, Acceptable}, {22.9, Acceptable}, {19.8, Bad}, {23, Bad}} {
		_, v, err := FreeAirCalibration(tt.r)
		require.NoError(t, err)
		assert.Equal(t, tt.v, v, "%v", tt.r)
	}
	_, _, err = FreeAirCalibration(math.NaN())
	assert.Error(t, err)
	m, err := StoichMultiplier(14.7, 14.0)
	require.NoError(t, err)
	assert.InDelta(t, 1.05, m, 1e-12)
	_, err = StoichMultiplier(14.7, 0)
	assert.Error(t, err)
	assert.Equal(t, "acceptable", Acceptable.String())
}
