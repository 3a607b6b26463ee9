package afr

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The vectors of ve-afr spec §4.8 and §9.1, exact to the last bit where the
// spec gives the Python repr.
func TestMultiplierVectors(t *testing.T) {
	tests := []struct {
		name         string
		cfg          MultiplierConfig
		meas, target float64
		want         float64
		exact        bool
	}{
		{"v2 lean", MultiplierConfig{}, 14, 13, 1.0769230769230769, true},
		{"v2 rich", MultiplierConfig{}, 12, 13, 0.9230769230769231, true},
		{"v2 clamped", MultiplierConfig{}, 16, 13, 1.15, true},
		{"v2 unclamped", MultiplierConfig{NoClamp: true}, 16, 13, 1.2307692307692308, true},
		{"v1 lean", MultiplierConfig{Version: V1, NoClamp: true}, 14, 13, 1.07, false},
		{"v1 far lean", MultiplierConfig{Version: V1, NoClamp: true}, 16, 13, 1.21, false},
		{"v1 far rich", MultiplierConfig{Version: V1, NoClamp: true}, 10, 13, 0.79, false},
		{"v1 half point", MultiplierConfig{Version: V1, NoClamp: true}, 13, 12.5, 1.035, false},
		{"v1 clamped", MultiplierConfig{Version: V1}, 16, 13, 1.15, true},
		{"bounds accepted low", MultiplierConfig{NoClamp: true}, 9.0, 9.0, 1, true},
		{"bounds accepted high", MultiplierConfig{NoClamp: true}, 20.0, 20.0, 1, true},
		// (14, 13) at baro 24.89 inHg: the environmental total at 77 °F, dry,
		// is the pressure ratio alone.
		{"env baro 24.89", MultiplierConfig{Env: 24.89 / 29.92}, 14, 13, 0.8958761826408885, true},
		{"custom clamp", MultiplierConfig{MaxPct: 5}, 14, 13, 1.05, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.Multiplier(tt.meas, tt.target)
			require.NoError(t, err)
			if tt.exact {
				assert.Equal(t, tt.want, got)
			} else {
				assert.InDelta(t, tt.want, got, 1e-12)
			}
		})
	}
}

func TestMultiplierRejects(t *testing.T) {
	for _, tt := range []struct {
		name         string
		meas, target float64
		which        string
	}{
		{"meas below", 8.9, 13, "measured"},
		{"meas above", 20.1, 13, "measured"},
		{"meas zero", 0, 13, "measured"},
		{"meas NaN", math.NaN(), 13, "measured"},
		{"meas Inf", math.Inf(1), 13, "measured"},
		{"target below", 13, 8.9, "target"},
		{"target above", 13, 20.1, "target"},
		{"target NaN", 13, math.NaN(), "target"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Multiplier(tt.meas, tt.target)
			require.ErrorIs(t, err, ErrInvalidAFR)
			var ie *InputError
			require.True(t, errors.As(err, &ie))
			assert.Equal(t, tt.which, ie.Which)
		})
	}
}

func TestMultiplierConfigValidate(t *testing.T) {
	for _, c := range []MultiplierConfig{
		{MaxPct: -1}, {MinAFR: 15, MaxAFR: 10}, {MinAFR: -1}, {Env: -0.5}, {Version: 7}, {MaxPct: math.NaN()},
	} {
		_, err := c.Multiplier(13, 13)
		assert.Error(t, err, "%+v", c)
		assert.NotErrorIs(t, err, ErrInvalidAFR)
	}
	lo, hi := MultiplierConfig{}.Bounds()
	assert.Equal(t, 1.0-15.0/100, lo)
	assert.Equal(t, 1.0+15.0/100, hi)
}

func TestErrors(t *testing.T) {
	// ve-afr spec §4.1.
	assert.InDelta(t, -7.142857, ErrorPctLegacy(14, 13), 1e-6)
	assert.InDelta(t, 8.333333, ErrorPctLegacy(12, 13), 1e-6)
	assert.Equal(t, 1.0, ErrorPoints(14, 13))
	assert.InDelta(t, 7.692308, ErrorPct(14, 13), 1e-6)
	assert.InDelta(t, PctFromMultiplier(MultiplierV2(14, 13)), ErrorPct(14, 13), 1e-12)
	assert.InDelta(t, 1.05, MultiplierFromPct(5), 1e-15)
	assert.Equal(t, "2.0.0", V2.String())
	assert.Equal(t, "1.0.0", V1.String())
	assert.Equal(t, V2, Version(0), "the zero Version is the default v2")
}

func TestCompareVersions(t *testing.T) {
	c, err := CompareVersions(14, 13)
	require.NoError(t, err)
	assert.InDelta(t, 1.07, c.V1, 1e-12)
	assert.Equal(t, 1.0769230769230769, c.V2)
	assert.InDelta(t, 0.0069230769230769, c.Difference, 1e-12)
	assert.InDelta(t, c.Difference/c.V2*100, c.DifferencePct, 1e-12)
	_, err = CompareVersions(25, 13)
	assert.ErrorIs(t, err, ErrInvalidAFR)
}
