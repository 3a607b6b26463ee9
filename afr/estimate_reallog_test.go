package afr_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/internal/shareddata"
)

// AutoAlign at its defaults on the real third-party logs and the
// predecessor's sample logs: the stream keeps its length; a log of a minute
// or less (one pull, a few rows) never gives a confident delay, since it
// passes each cell once; and a confident delay is a physical one. The table
// says what each log gave.
//
//	go test ./afr -run TestAutoAlignRealLogs -v
func TestAutoAlignRealLogs(t *testing.T) {
	var b strings.Builder
	for _, sub := range [][]string{{"reallogs"}, {"dynoai3", "logs"}} {
		dir := shareddata.Dir(t, sub...)
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, ent := range ents {
			if ent.IsDir() || strings.HasSuffix(ent.Name(), ".md") {
				continue
			}
			name := ent.Name()
			path := filepath.Join(dir, name)
			rows, err := countRows(t, path)
			if err != nil {
				fmt.Fprintf(&b, "%-66s not read: %.60s\n", name, err)
				continue
			}
			r, err := dynolog.Open(path, dynolog.ReadOptions{})
			if err != nil {
				t.Fatalf("%s: read once, not twice: %v", name, err)
			}
			a := afr.AutoAlign(r, afr.AutoAlignOptions{})
			smp := dyno.NewSample()
			n := 0
			var first, last time.Duration
			for {
				err = a.Next(t.Context(), &smp)
				if err != nil {
					break
				}
				if n == 0 {
					first = smp.Time
				}
				last = smp.Time
				n++
			}
			r.Close()
			if !errors.Is(err, io.EOF) {
				// A time column that restarts stops the estimator and
				// the Aligner: the pipeline rebuilds time (dyno.Retime)
				// first.
				if !errors.Is(err, afr.ErrEstimate) && !errors.Is(err, afr.ErrAlign) {
					t.Errorf("%s: %v", name, err)
				}
				fmt.Fprintf(&b, "%-66s stopped: %.60s\n", name, err)
				continue
			}
			if n != rows {
				t.Errorf("%s: AutoAlign gave %d samples, the log has %d", name, n, rows)
			}
			est, estErr := a.Estimate()
			used := a.Delay()
			confident := estErr == nil && est.Confidence >= afr.DefaultAutoMinConfidence
			outcome := "fallback"
			if confident {
				outcome = fmt.Sprintf("learned %v", used.Fixed.Round(time.Millisecond))
			}
			fmt.Fprintf(&b, "%-66s %6d rows %8v: estimate %7v confidence %.2f → %s\n", name, n, (last - first).Round(time.Second),
				est.Overall.Round(time.Millisecond), est.Confidence, outcome)
			if last-first <= time.Minute && confident {
				t.Errorf("%s: %d rows over %v give a confident delay %v (confidence %.2f)", name, n, last-first, est.Overall, est.Confidence)
			}
			if confident && (used.At(3000) < 50*time.Millisecond || used.At(3000) > time.Second) {
				t.Errorf("%s: confident delay %v is not a wideband's", name, used)
			}
			if !confident && used != (afr.Delay{}) {
				t.Errorf("%s: fell back to %v, want the zero Fallback", name, used)
			}
		}
	}
	t.Logf("AutoAlign at its defaults:\n%s", b.String())
}

// countRows returns the samples the log at path holds, or the error that
// kept it from being read to its end.
func countRows(t *testing.T, path string) (int, error) {
	r, err := dynolog.Open(path, dynolog.ReadOptions{})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	s := dyno.NewSample()
	n := 0
	for {
		err := r.Next(t.Context(), &s)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}
