package afr

import (
	"encoding/json"
	"math"
	"time"
)

// MarshalJSON writes an open band edge (±Inf) as null: JSON has no
// infinities, and a result document must always encode.
func (b BandDelay) MarshalJSON() ([]byte, error) {
	edge := func(v float64) *float64 {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		MinRPM     *float64      `json:"min_rpm"`
		MaxRPM     *float64      `json:"max_rpm"`
		MeanRPM    *float64      `json:"mean_rpm"`
		Delay      time.Duration `json:"delay_ns"`
		Confidence float64       `json:"confidence"`
		Explained  float64       `json:"explained"`
		Pairs      int           `json:"pairs"`
	}{edge(b.MinRPM), edge(b.MaxRPM), edge(b.MeanRPM), b.Delay, b.Confidence, b.Explained, b.Pairs})
}

// UnmarshalJSON reads what MarshalJSON writes, null edges as ±Inf.
func (b *BandDelay) UnmarshalJSON(data []byte) error {
	var v struct {
		MinRPM     *float64      `json:"min_rpm"`
		MaxRPM     *float64      `json:"max_rpm"`
		MeanRPM    *float64      `json:"mean_rpm"`
		Delay      time.Duration `json:"delay_ns"`
		Confidence float64       `json:"confidence"`
		Explained  float64       `json:"explained"`
		Pairs      int           `json:"pairs"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*b = BandDelay{MinRPM: math.Inf(-1), MaxRPM: math.Inf(1), MeanRPM: math.NaN(),
		Delay: v.Delay, Confidence: v.Confidence, Explained: v.Explained, Pairs: v.Pairs}
	if v.MinRPM != nil {
		b.MinRPM = *v.MinRPM
	}
	if v.MaxRPM != nil {
		b.MaxRPM = *v.MaxRPM
	}
	if v.MeanRPM != nil {
		b.MeanRPM = *v.MeanRPM
	}
	return nil
}
