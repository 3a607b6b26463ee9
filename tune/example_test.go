package tune_test

import (
	"context"
	"fmt"

	"github.com/dynoai/dynoai/tune"
)

// A lean start with a 400 ms wideband delay the session learns from the
// logs: three pulls, two corrections.
func ExampleRun() {
	sc, err := tune.ScenarioByName("lean", 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, err := sc.Config()
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg.LearnDelay = true
	rep, err := tune.Run(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, it := range rep.Iterations {
		fmt.Printf("iteration %d: max AFR error within 0.1: %v, VE error within 1 %%: %v\n",
			it.N, it.MaxAFRError <= 0.1, it.RMSVEErrorPct <= 1)
	}
	fmt.Println(rep.Status, "delay learned within 50 ms:", rep.Iterations[0].Delay.Seconds() > 0.35 && rep.Iterations[0].Delay.Seconds() < 0.45)
	// Output:
	// iteration 1: max AFR error within 0.1: false, VE error within 1 %: false
	// iteration 2: max AFR error within 0.1: false, VE error within 1 %: true
	// iteration 3: max AFR error within 0.1: false, VE error within 1 %: false
	// iteration 4: max AFR error within 0.1: true, VE error within 1 %: true
	// converged delay learned within 50 ms: true
}

// The planner turns the evidence of a session's last analysis into the
// next tests.
func ExamplePlanner() {
	sc, _ := tune.ScenarioByName("lean", 1)
	cfg, _ := sc.Config()
	cfg.MaxIterations = 1
	rep, err := tune.Run(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	tests, err := tune.Planner(rep.Result, tune.PlannerOptions{
		Reachable: func(rpm, mapKPa float64) bool { return mapKPa >= 30 && rpm <= 5500 },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	kinds := map[string]int{}
	for _, t := range tests {
		kinds[t.Kind]++
	}
	fmt.Println("holds:", kinds["hold"] > 0, "sweeps:", kinds["sweep"] > 0, "under 3 minutes:", tune.TotalSeconds(tests) < 180)
	// Output: holds: true sweeps: true under 3 minutes: true
}
