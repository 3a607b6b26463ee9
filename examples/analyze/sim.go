package main

import (
	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/internal/demo"
)

// newSimulation returns the simulated dyno session -simulate analyzes.
func newSimulation(seed uint64) (dyno.Source, error) {
	return demo.Session(demo.DefaultScenario(seed))
}
