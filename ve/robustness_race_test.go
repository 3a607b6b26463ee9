//go:build race

package ve_test

// raceEnabled is true under the race detector: the robustness harness then
// runs fewer sessions.
const raceEnabled = true
