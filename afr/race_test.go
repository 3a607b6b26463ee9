//go:build race

package afr_test

// raceEnabled is true under the race detector: the robustness sessions then
// run one seed.
const raceEnabled = true
