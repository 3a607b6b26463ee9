//go:build unix

package ve

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExportModeFollowsUmask: exports are 0666 masked by the umask, like
// any file a tool writes, not 0600 whatever the umask.
func TestExportModeFollowsUmask(t *testing.T) {
	for _, tc := range []struct {
		umask int
		want  os.FileMode
	}{{0o022, 0o644}, {0o077, 0o600}, {0o002, 0o664}} {
		old := syscall.Umask(tc.umask)
		dir := t.TempDir()
		p := filepath.Join(dir, "VE_Correction_Front.csv")
		err := writeFileAtomic(p, func(w io.Writer) error { _, err := io.WriteString(w, "x\n"); return err })
		syscall.Umask(old)
		require.NoError(t, err)
		st, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, tc.want, st.Mode().Perm(), "umask %03o", tc.umask)
		left, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Len(t, left, 1, "no temporary file left behind")
	}
}
