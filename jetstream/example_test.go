package jetstream_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"math"
	"strings"
	"time"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
)

// A Jetstream raw CSV in mixed units becomes samples in dyno's units.
func ExampleNewReader() {
	raw := "Time,Engine_RPM,MAP_psi,Torque_Nm,Lambda_Front,Lambda_Rear,IAT\n" +
		"0.00,3000,12.5,135.58,0.87,0.88,86\n" +
		"0.02,3050,12.6,136.20,0.86,0.88,86\n"
	r, err := jetstream.NewReader(strings.NewReader(raw), jetstream.ReaderOptions{Name: "JS-1"})
	if err != nil {
		log.Fatal(err)
	}
	var s dyno.Sample
	for {
		if err := r.Next(context.Background(), &s); err == io.EOF {
			break
		} else if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("t=%v rpm=%.0f map=%.1f kPa torque=%.1f ft-lb afr=%.2f/%.2f iat=%.0f °C\n",
			s.Time, s.RPM, s.MAP, s.Torque, s.AFR[dyno.Front], s.AFR[dyno.Rear], s.IAT)
	}
	// Output:
	// t=0s rpm=3000 map=86.2 kPa torque=100.0 ft-lb afr=12.79/12.94 iat=30 °C
	// t=20ms rpm=3050 map=86.9 kPa torque=100.5 ft-lb afr=12.64/12.94 iat=30 °C
}

// A missing required column is an error that names it.
func ExampleNewReader_missingColumn() {
	_, err := jetstream.NewReader(strings.NewReader("RPM,MAP_psi,Torque_kgm\n3000,5,10\n"), jetstream.ReaderOptions{Name: "JS-2"})
	fmt.Println(err)
	// Output:
	// JS-2: missing required columns (format csv): torque; headers found: "RPM", "MAP_psi", "Torque_kgm"
}

func ExampleMaskKey() {
	fmt.Println(jetstream.MaskKey("abcd1234efgh5678"))
	fmt.Println(jetstream.MaskKey("dummy"))
	// Output:
	// ********5678
	// ********
}

// A Poller against the stub server: the seven sample runs of the
// predecessor, simulated by the dyno simulator. Six are processed; the one
// whose log lacks MAP fails with a reason.
func ExamplePoller() {
	ctx := context.Background()
	srv, err := jetstreamtest.NewStub(ctx, jetstreamtest.Options{APIKey: "example-key-0001"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client, err := jetstream.NewHTTPClient(jetstream.HTTPOptions{BaseURL: srv.URL, APIKey: "example-key-0001"})
	if err != nil {
		log.Fatal(err)
	}
	// The analysis step: here, peak power from torque and rpm.
	peak := jetstream.ProcessorFunc(func(ctx context.Context, run jetstream.RunMetadata, src dyno.Source) (jetstream.Outcome, error) {
		var s dyno.Sample
		hp := 0.0
		for {
			if err := src.Next(ctx, &s); err == io.EOF {
				return jetstream.Outcome{Summary: map[string]float64{"peak_hp": hp}}, nil
			} else if err != nil {
				return jetstream.Outcome{}, err
			}
			hp = math.Max(hp, s.Torque*s.RPM/5252)
		}
	})
	store := jetstream.NewMemoryStore()
	p, err := jetstream.NewPoller(client, store, peak, jetstream.PollerOptions{Interval: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	res, err := p.Poll(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new:", len(res.New), "done:", len(res.Processed), "failed:", res.Failed)
	st, _, _ := store.RunState(ctx, "JS-ALPHA-001")
	hp := st.Outcome.Summary["peak_hp"]
	fmt.Printf("JS-ALPHA-001: %s, peak within 1%% of 118.4 HP: %v, marked %v\n", st.Status, math.Abs(hp-118.4) < 1.184, st.Marked)
	st, _, _ = store.RunState(ctx, "JS-GAMMA-404")
	fmt.Printf("JS-GAMMA-404: %s at %s\n", st.Status, st.Error.Stage)
	// Output:
	// new: 7 done: 6 failed: [JS-GAMMA-404]
	// JS-ALPHA-001: done, peak within 1% of 118.4 HP: true, marked true
	// JS-GAMMA-404: failed at converting
}
