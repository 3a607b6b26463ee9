package ve

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/internal/shareddata"
)

// volatileReplay matches the session replay's volatile values: the run id,
// the times and the confidence scoring's elapsed time.
var volatileReplay = regexp.MustCompile(`("(?:timestamp|generated_at|run_id)": )"[^"]*"|("elapsed_ms": )[-0-9.e+]+`)

func blankReplay(s string) string { return volatileReplay.ReplaceAllString(s, `$1$2"-"`) }

// replayEntries splits a blanked replay file into its head (up to the
// decisions array) and its entries, each with the layout around it.
func replayEntries(s string) (string, []string) {
	parts := strings.Split(s, "\n    {\n")
	entries := parts[1:]
	for i, e := range entries {
		entries[i] = strings.TrimSuffix(strings.TrimSuffix(e, "\n  ]\n}"), ",")
	}
	return parts[0], entries
}

var replayAction = regexp.MustCompile(`"action": "([A-Z_]+)"`)

// TestDynoAI3ReplayReference compares session_replay.json with the
// predecessor's for every reference case that has one, entry by entry,
// after blanking the volatile fields.
func TestDynoAI3ReplayReference(t *testing.T) {
	root := shareddata.Dir(t, "dynoai3")
	compared := 0
	for _, tc := range dynoai3Cases {
		want, err := os.ReadFile(filepath.Join(root, "reference", tc.name, "session_replay.json"))
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		t.Run(tc.name, func(t *testing.T) {
			opts := DefaultDynoAI3Options()
			if tc.opts != nil {
				opts = tc.opts(t, root)
			}
			data, err := os.ReadFile(filepath.Join(root, "logs", tc.log))
			require.NoError(t, err)
			res, err := DynoAI3Compat(t.Context(), bytes.NewReader(data), tc.log, opts)
			require.NoError(t, err)
			out := t.TempDir()
			_, err = res.WriteFiles(out)
			require.NoError(t, err)
			got, err := os.ReadFile(filepath.Join(out, "session_replay.json"))
			require.NoError(t, err)
			compareReplay(t, string(want), string(got))
		})
		compared++
	}
	require.Equal(t, 8, compared, "reference cases with a session replay")
}

func compareReplay(t *testing.T, want, got string) {
	t.Helper()
	wantHead, wantEntries := replayEntries(blankReplay(want))
	gotHead, gotEntries := replayEntries(blankReplay(got))
	for i := range min(len(wantEntries), len(gotEntries)) {
		if wantEntries[i] != gotEntries[i] {
			a := replayAction.FindStringSubmatch(wantEntries[i])
			require.Equal(t, wantEntries[i], gotEntries[i], "decision %d (%v) differs from the predecessor's", i, a)
		}
	}
	require.Equal(t, len(wantEntries), len(gotEntries), "number of decisions")
	require.Equal(t, wantHead, gotHead, "head of the file")
	require.True(t, strings.HasSuffix(want, "\n    }\n  ]\n}"), "the reference's tail")
	require.True(t, strings.HasSuffix(got, "\n    }\n  ]\n}"), "the tail, without a final newline")
}

// TestDynoAI3ReplayCommitted compares with the replay the predecessor
// committed beside test_realistic.csv (clamp 10). It came from an older
// build that did not log the confidence scoring pair yet (VA §9.4), so those
// two entries are left out of ours.
func TestDynoAI3ReplayCommitted(t *testing.T) {
	root := shareddata.Dir(t, "dynoai3")
	want, err := os.ReadFile(filepath.Join(root, "committed-outputs", "test_session_replay", "session_replay.json"))
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(root, "logs", "test_realistic.csv"))
	require.NoError(t, err)
	opts := DefaultDynoAI3Options()
	opts.Clamp = 10
	res, err := DynoAI3Compat(t.Context(), bytes.NewReader(data), "test_realistic.csv", opts)
	require.NoError(t, err)
	rep := *res.SessionReplay
	rep.Decisions = nil
	for _, d := range res.SessionReplay.Decisions {
		if d.Action != DynoAI3ConfidenceStart && d.Action != DynoAI3ConfidenceComplete {
			rep.Decisions = append(rep.Decisions, d)
		}
	}
	got, err := rep.JSON()
	require.NoError(t, err)
	compareReplay(t, string(want), string(got))
}

// TestDynoAI3ReplayClamping: test_realistic.csv at a 1 % clamp moves 11
// cells (predecessor-modules spec §6.3): CLAMPING_APPLIED follows
// CLAMPING_START with the count and the first ten cells, by grid index,
// and the log holds 122 decisions, as the spec counted.
func TestDynoAI3ReplayClamping(t *testing.T) {
	root := shareddata.Dir(t, "dynoai3")
	data, err := os.ReadFile(filepath.Join(root, "logs", "test_realistic.csv"))
	require.NoError(t, err)
	opts := DefaultDynoAI3Options()
	opts.Clamp = 1
	res, err := DynoAI3Compat(t.Context(), bytes.NewReader(data), "test_realistic.csv", opts)
	require.NoError(t, err)
	require.Equal(t, 11, res.Clamped)
	var start, applied int = -1, -1
	for i, d := range res.SessionReplay.Decisions {
		switch d.Action {
		case DynoAI3ClampingStart:
			start = i
			require.Equal(t, "Clamping VE corrections to +/- 1.0%", d.Reason)
		case DynoAI3ClampingApplied:
			applied = i
			require.Equal(t, "Clamped 11 cells exceeding +/- 1.0% limit", d.Reason)
			n, _ := d.Values.Get("clamped_count")
			require.Equal(t, 11, n)
			cells, _ := d.Values.Get("cells")
			require.Len(t, cells, 10)
			first := cells.([]any)[0].(DynoAI3Object)
			require.Equal(t, []string{"rpm_index", "kpa_index", "original", "clamped"}, []string{first[0].Key, first[1].Key, first[2].Key, first[3].Key})
			c, _ := first.Get("clamped")
			require.Contains(t, []any{1.0, -1.0}, c)
		}
	}
	require.Equal(t, start+1, applied, "CLAMPING_APPLIED right after CLAMPING_START")
	require.Len(t, res.SessionReplay.Decisions, 122, "the spec's count for this run")
}

// TestPyJSON pins the Python number and string text the predecessor's JSON
// files hold.
func TestPyJSON(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{7.0, "7.0"},
		{7, "7"},
		{nil, "null"},
		{pyRound(-0.001, 2), "-0.0"},
		{pyRound(2.675, 2), "2.67"}, // the binary value is below the tie
		{pyRound(0.125, 2), "0.12"}, // an exact tie rounds half-even
		{927437.5000000001, "927437.5000000001"},
		{1e16, "1e+16"},
		{1.5e-5, "1.5e-05"},
		{0.0001, "0.0001"},
		{"≥10 °F \"x\"\n", `"\u226510 \u00b0F \"x\"\n"`},
		{[]any{}, "[]"},
		{DynoAI3Object{}, "{}"},
		{DynoAI3Object{{"a", []any{1, 2.5}}}, "{\n  \"a\": [\n    1,\n    2.5\n  ]\n}"},
	} {
		var b bytes.Buffer
		require.NoError(t, writePyJSON(&b, tc.v, 0, true))
		require.Equal(t, tc.want, b.String(), "%#v", tc.v)
	}
	var b bytes.Buffer
	require.NoError(t, writePyJSON(&b, "≥ \U0001F600", 0, false))
	require.Equal(t, `"≥ `+"\U0001F600"+`"`, b.String(), "ensure_ascii=False keeps non-ASCII")
	b.Reset()
	require.NoError(t, writePyJSON(&b, "\U0001F600\x7f", 0, true))
	require.Equal(t, `"\ud83d\ude00\u007f"`, b.String())
	require.Error(t, writePyJSON(&b, struct{}{}, 0, true))
}

// TestK1StagesMatchKernel: the replay's trace of K1 (gradients, adaptive
// passes) is the kernel's own: blended as K1's stage 3 does and smoothed by
// K2, it gives SmoothK1K2's grid bit for bit, on random grids with holes.
func TestK1StagesMatchKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	g := dynoAI3Grid()
	for trial := range 200 {
		in := MustTable(g.RPM, g.MAP, math.NaN())
		for i := range in.Values {
			if rng.IntN(5) > 0 {
				in.Values[i] = rng.NormFloat64() * 3
			}
		}
		passes, threshold := trial%7-1, 0.5+rng.Float64()
		grad, a := k1Stages(in, max(0, min(5, passes)))
		b := a.Clone()
		for i, gv := range in.Values {
			if Has(gv) && Has(a.Values[i]) && grad[i] > threshold {
				bf := math.Min(1, grad[i]/(2*threshold))
				b.Values[i] = (1-bf)*a.Values[i] + bf*gv
			}
		}
		for r := range b.Rows() {
			for c := range b.Cols() {
				v := b.Get(r, c)
				if !Has(v) {
					continue
				}
				sum, w := 1.25*v, 1.25
				neighbours(b, r, c, func(n float64) { sum += n; w++ })
				b.Set(r, c, 0.2*(sum/w)+0.8*v)
			}
		}
		want := SmoothK1K2(in, passes, threshold)
		for i := range want.Values {
			require.Equal(t, math.Float64bits(want.Values[i]), math.Float64bits(b.Values[i]), "trial %d cell %d", trial, i)
		}
	}
}
