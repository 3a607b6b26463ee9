package afr

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBandDelayJSONOpenEdges(t *testing.T) {
	in := DelayEstimate{Bands: []BandDelay{
		{MinRPM: math.Inf(-1), MaxRPM: 3000, MeanRPM: 2500, Delay: 400 * time.Millisecond, Confidence: 0.8, Pairs: 10},
		{MinRPM: 3000, MaxRPM: math.Inf(1), MeanRPM: math.NaN()},
	}}
	data, err := json.Marshal(in)
	require.NoError(t, err)
	require.Contains(t, string(data), `"min_rpm":null`)
	var back DelayEstimate
	require.NoError(t, json.Unmarshal(data, &back))
	require.True(t, math.IsInf(back.Bands[0].MinRPM, -1))
	require.True(t, math.IsInf(back.Bands[1].MaxRPM, 1))
	require.Equal(t, 3000.0, back.Bands[0].MaxRPM)
	require.Equal(t, 400*time.Millisecond, back.Bands[0].Delay)
}
