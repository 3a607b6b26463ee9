package main

import (
	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/tune"
)

// newSimulation returns the simulated dyno session -simulate analyzes: the
// demo scenario of package tune.
func newSimulation(seed uint64) (dyno.Source, error) {
	sc, err := tune.ScenarioByName("demo", seed)
	if err != nil {
		return nil, err
	}
	return sc.Simulator()
}
