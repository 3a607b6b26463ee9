package readme

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// skipped names the README commands the test does not run, and why. Every
// other `go run ./examples/...` line of a sh block runs; a line in neither
// set (a README edit) fails the test until it is run or listed here. A
// command is looked up without the variables set before it.
var skipped = map[string]string{
	`go run ./examples/analyze -map afr="LC2 AFR2" -unit ect=C LOG`:                                                                "needs the reader's own log (LOG) with that column",
	`go run ./examples/analyze -targets targets.csv LOG`:                                                                           "needs the reader's own target table and log",
	`go run ./examples/analyze -compat -out out LOG.csv`:                                                                           "needs a log in the predecessor's units (°F intake): the shipped sample's °C is refused with exit 3, as TestAnalyzeCompatRefusesOutOfWindowLog shows",
	`go run ./examples/server`:                                                                                                     "a server: runs until stopped (examples/server's tests run it)",
	`go run ./examples/dbtool import-dynoai3 -dry-run -inputs OLD/logs OLD`:                                                        "needs the reader's own DynoAI_3 folders; examples/dbtool's TestImportDynoAI3* run it on a tree of every family",
	`go run ./examples/dbtool -db sqlite:data/dynoai.db import-dynoai3 -dry-run -inputs ~/DynoAI_3/tests/data ~/DynoAI_3`:          "needs the reader's own DynoAI_3 checkout; examples/dbtool's TestImportDynoAI3* run it",
	`go run ./examples/dbtool -db sqlite:data/dynoai.db import-dynoai3 -files data/files -inputs ~/DynoAI_3/tests/data ~/DynoAI_3`: "needs the reader's own DynoAI_3 checkout; examples/dbtool's TestImportDynoAI3* run it",
	`go run ./examples/jetdrive simulate -iface loopback`:                                                                          "runs until stopped, on multicast (examples/jetdrive's tests run it)",
}

// substitute replaces the README's placeholders for a log with the sample
// the project ships, where the command works on any log.
var substitute = strings.NewReplacer(" LOG.csv", " testdata/sample_pulls.csv", " LOG", " testdata/sample_pulls.csv")

// TestREADMECommands runs each command of README.md's sh blocks, in order,
// in a fresh directory holding only the module's testdata (as a clone has
// it), with `go run ./examples/X` replaced by the built command. Each must
// exit 0 within a minute.
func TestREADMECommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every example; skipped with -short")
	}
	if runtime.GOOS == "windows" {
		t.Skip("the README's commands are sh")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	cmds := readmeCommands(t, filepath.Join(root, "README.md"))
	require.NotEmpty(t, cmds)

	work := t.TempDir()
	require.NoError(t, os.Symlink(filepath.Join(root, "testdata"), filepath.Join(work, "testdata")))
	bin := filepath.Join(work, ".bin")
	built := map[string]string{}
	run := regexp.MustCompile(`go run \./examples/([a-z]+)`)
	ran := 0
	envPrefix := regexp.MustCompile(`^([A-Z_]+=('[^']*'|\S*)\s+)+`)
	for _, line := range cmds {
		if why, ok := skipped[envPrefix.ReplaceAllString(line, "")]; ok {
			t.Logf("not run: %s (%s)", line, why)
			continue
		}
		if line == "go test ./..." {
			continue // this is that command
		}
		m := run.FindStringSubmatch(line)
		require.NotNil(t, m, "a README command the test does not know: %q (run it or list it in skipped)", line)
		name := m[1]
		if built[name] == "" {
			exe := filepath.Join(bin, name)
			b := exec.Command("go", "build", "-o", exe, "./examples/"+name)
			b.Dir = root
			out, err := b.CombinedOutput()
			require.NoError(t, err, "go build ./examples/%s: %s", name, out)
			built[name] = exe
		}
		sh := substitute.Replace(strings.Replace(line, m[0], built[name], 1))
		t.Run(strings.TrimPrefix(line, "go run ./examples/"), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := exec.CommandContext(ctx, "sh", "-c", sh)
			c.Dir = work
			var out bytes.Buffer
			c.Stdout, c.Stderr = &out, &out
			err := c.Run()
			require.NoError(t, ctx.Err(), "%s did not finish within a minute", line)
			require.NoError(t, err, "%s\n%s", line, tail(out.String(), 40))
		})
		ran++
	}
	t.Logf("ran %d README commands", ran)
}

// readmeCommands returns the commands of the README's sh code blocks, one
// per line, comments after "#" removed and continued lines joined.
func readmeCommands(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var cmds []string
	in, cont := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "```"):
			in = strings.TrimPrefix(l, "```") == "sh"
			continue
		case !in:
			continue
		}
		if i := strings.Index(l, " #"); i >= 0 {
			l = l[:i]
		}
		l = strings.TrimSpace(l)
		if strings.HasSuffix(l, `\`) {
			cont += strings.TrimSuffix(l, `\`)
			continue
		}
		l = strings.TrimSpace(cont + l)
		cont = ""
		if l != "" {
			cmds = append(cmds, l)
		}
	}
	require.NoError(t, sc.Err())
	return cmds
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
