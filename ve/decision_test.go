package ve

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDecisionLog: on the shipped sample (pulls, part throttle, decels and
// transients), the decision log accounts for every rejected sample, per
// rule, either in a cell or as unplaced; its verdicts agree with the
// cells' evidence and with the corrections written; and its size is the
// grid's.
func TestDecisionLog(t *testing.T) {
	src, err := dynolog.Open(filepath.Join("..", "testdata", "sample_pulls.csv"), dynolog.ReadOptions{})
	require.NoError(t, err)
	defer src.Close()
	a, err := New(Options{})
	require.NoError(t, err)
	res, err := a.Analyze(t.Context(), src)
	require.NoError(t, err)
	log := res.Decisions()
	cells := len(res.Grid.RPM) * len(res.Grid.MAP)
	require.LessOrEqual(t, len(log.Cells), cells*len(res.Cylinders))
	verdicts := map[string]map[Verdict]int{}
	placed := map[string]map[string]int{}
	for _, d := range log.Cells {
		if verdicts[d.Cylinder] == nil {
			verdicts[d.Cylinder], placed[d.Cylinder] = map[Verdict]int{}, map[string]int{}
		}
		verdicts[d.Cylinder][d.Verdict]++
		for r, n := range d.Rejected {
			placed[d.Cylinder][r] += n
		}
		switch d.Verdict {
		case VerdictCorrected:
			assert.GreaterOrEqual(t, d.Evidence, d.Floor)
		case VerdictBelowFloor, VerdictNoData, VerdictUncertain, VerdictLowResolution:
			assert.Equal(t, 1.0, d.Applied, "%s %v/%v: %s but applied %v", d.Cylinder, d.RPM, d.Load, d.Verdict, d.Applied)
		}
	}
	for _, cr := range res.Cylinders {
		name := cr.Name()
		for r, n := range cr.Rejected.Map() {
			assert.Equal(t, n, placed[name][r]+log.Unplaced[name][r], "%s: every %s rejection is accounted for", name, r)
		}
		rules := map[string]RuleDecision{}
		for _, rd := range log.Rules {
			if rd.Cylinder == name {
				rules[rd.Rule] = rd
			}
		}
		for v, n := range verdicts[name] {
			assert.Equal(t, n, rules[v.String()].Cells, "%s: %s", name, v)
		}
		assert.Equal(t, cr.Rejected[RejectDecel], rules["decel"].Samples)
	}
	assert.Positive(t, verdicts["Front"][VerdictCorrected])
	assert.Positive(t, verdicts["Front"][VerdictBelowFloor], "the sample has thin cells")

	dir := t.TempDir()
	names, err := res.WriteFiles(dir)
	require.NoError(t, err)
	require.Contains(t, names, "Decision_Log.json")
	b, err := os.ReadFile(filepath.Join(dir, "result.json"))
	require.NoError(t, err)
	var doc struct{ Decisions *DecisionLog }
	require.NoError(t, json.Unmarshal(b, &doc))
	require.NotNil(t, doc.Decisions)
	assert.Len(t, doc.Decisions.Cells, len(log.Cells))
}
