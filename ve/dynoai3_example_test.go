package ve_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dynoai/dynoai/ve"
)

// The compatibility run keeps the predecessor's session replay: the first
// three accepted samples of each cell and cylinder, the smoothing, clamping,
// anomaly and confidence steps, in its order and with its rounding.
func ExampleDynoAI3Replay() {
	var log strings.Builder
	log.WriteString("rpm,map_kpa,torque,afr_cmd_f,afr_cmd_r,afr_meas_f,afr_meas_r,iat,tps\n")
	for i := range 20 {
		fmt.Fprintf(&log, "3000,80,%d,13.0,13.0,%.2f,12.90,100,50\n", 90+i, 13.1+float64(i%3)*0.05)
	}
	opts := ve.DefaultDynoAI3Options()
	opts.Now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	res, err := ve.DynoAI3Compat(context.Background(), strings.NewReader(log.String()), "hold.csv", opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range res.SessionReplay.Decisions {
		fmt.Println(d.Action + ": " + d.Reason)
	}
	// The file holds Python's text: 90.0 and 13.0 are floats, 3000 an int.
	data, err := res.SessionReplay.JSON()
	if err != nil {
		fmt.Println(err)
		return
	}
	lines := strings.Split(string(data), "\n")
	fmt.Println(strings.Join(lines[6:21], "\n"))
	// Output:
	// AFR_CORRECTION: Accepted AFR error sample for f cylinder
	// AFR_CORRECTION: Accepted AFR error sample for f cylinder
	// AFR_CORRECTION: Accepted AFR error sample for f cylinder
	// AFR_CORRECTION: Accepted AFR error sample for r cylinder
	// AFR_CORRECTION: Accepted AFR error sample for r cylinder
	// AFR_CORRECTION: Accepted AFR error sample for r cylinder
	// SMOOTHING_START: Starting gradient-limited smoothing with 2 passes, threshold=1.0%
	// CLAMPING_START: Clamping VE corrections to +/- 7.0%
	// ANOMALY_DETECTION_START: Starting anomaly detection analysis
	// CONFIDENCE_SCORING_START: Calculating tune confidence metrics
	// CONFIDENCE_SCORING_COMPLETE: Confidence score calculated: 60.9% (Grade C)
	//     {
	//       "timestamp": "2026-01-02T03:04:05.000Z",
	//       "action": "AFR_CORRECTION",
	//       "reason": "Accepted AFR error sample for f cylinder",
	//       "values": {
	//         "afr_error_pct": -0.76,
	//         "weight": 90.0,
	//         "afr_commanded": 13.0,
	//         "afr_measured": 13.1
	//       },
	//       "cell": {
	//         "rpm": 3000,
	//         "kpa": 80,
	//         "cylinder": "f"
	//       }
}
