package webui

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/dynoai/dynoai/internal/colorscale"
	"github.com/stretchr/testify/require"
)

// TestScalesMatchColorscale: the page's colour stops are
// internal/colorscale's, so a cell has the same colour in the UI as in
// examples/analyze's pictures.
func TestScalesMatchColorscale(t *testing.T) {
	js, err := os.ReadFile(filepath.Join("assets", "heatmap.js"))
	require.NoError(t, err)
	stop := regexp.MustCompile(`\[(-?[0-9.]+), \[0x([0-9a-f]{2}), 0x([0-9a-f]{2}), 0x([0-9a-f]{2})\]\]`)
	for name, want := range map[string][]colorscale.Stop{"DIV": colorscale.Diverging, "SEQ": colorscale.Sequential} {
		line := regexp.MustCompile(`const ` + name + ` = (\[.*\]);`).FindSubmatch(js)
		require.NotNil(t, line, "heatmap.js defines %s", name)
		got := stop.FindAllSubmatch(line[1], -1)
		require.Len(t, got, len(want), name)
		for i, m := range got {
			tv, err := strconv.ParseFloat(string(m[1]), 64)
			require.NoError(t, err)
			require.Equal(t, want[i].T, tv, "%s stop %d", name, i)
			for k, c := range []uint8{want[i].C.R, want[i].C.G, want[i].C.B} {
				v, err := strconv.ParseUint(string(m[2+k]), 16, 8)
				require.NoError(t, err)
				require.Equal(t, c, uint8(v), "%s stop %d channel %d", name, i, k)
			}
		}
	}
}
