package runstore

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIDs(t *testing.T) {
	var g IDGenerator
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name string
		at   time.Time
	}{
		{"first", t0},
		{"same millisecond", t0.Add(100 * time.Microsecond)},
		{"same millisecond again", t0.Add(900 * time.Microsecond)},
		{"next millisecond", t0.Add(time.Millisecond)},
		{"clock went back", t0.Add(-time.Hour)},
		{"later", t0.Add(time.Hour)},
	}
	prev := ""
	for _, tc := range cases {
		id, err := g.Next(tc.at)
		require.NoError(t, err)
		assert.True(t, ValidID(id), id)
		assert.Greater(t, id, prev, tc.name)
		prev = id
	}
	// The first 12 hex digits are the millisecond timestamp.
	id, err := g.Next(t0.Add(2 * time.Hour))
	require.NoError(t, err)
	assert.Equal(t, hex12(t0.Add(2*time.Hour).UnixMilli()), id[:12])
	// Many ids in one millisecond stay unique and increasing.
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id, err := g.Next(t0.Add(2 * time.Hour))
		require.NoError(t, err)
		require.False(t, seen[id])
		require.Greater(t, id, prev)
		seen[id], prev = true, id
	}
}

// TestIDNeighboursUnguessable: ids made in the same millisecond differ by
// a random step of at least 2^32 in their random part, never by a fixed
// amount, so knowing one id does not give its neighbours.
func TestIDNeighboursUnguessable(t *testing.T) {
	var g IDGenerator
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	low := func(id string) *big.Int {
		n, ok := new(big.Int).SetString(id[12:], 16) // the 80 random bits
		require.True(t, ok, id)
		return n
	}
	prev, err := g.Next(t0)
	require.NoError(t, err)
	min32 := new(big.Int).Lsh(big.NewInt(1), 32)
	steps := map[string]bool{}
	for i := 0; i < 2000; i++ {
		id, err := g.Next(t0)
		require.NoError(t, err)
		require.Equal(t, prev[:12], id[:12], "same millisecond")
		d := new(big.Int).Sub(low(id), low(prev))
		require.True(t, d.Cmp(min32) >= 0, "neighbours %s and %s differ by only %v", prev, id, d)
		steps[d.String()] = true
		prev = id
	}
	assert.Greater(t, len(steps), 1990, "steps repeat: not random")

	// Overflow of the random part borrows the next millisecond and stays
	// increasing.
	g.hi, g.lo = 1<<16-1, ^uint64(0)-5
	id, err := g.Next(t0)
	require.NoError(t, err)
	assert.Greater(t, id, prev)
	assert.Equal(t, hex12(t0.UnixMilli()+1), id[:12])
}

func hex12(ms int64) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 12)
	for i := 11; i >= 0; i-- {
		b[i] = digits[ms&15]
		ms >>= 4
	}
	return string(b)
}

func TestParseStatusAndSource(t *testing.T) {
	for in, want := range map[string]Status{"queued": StatusQueued, "pending": StatusQueued, "RUNNING": StatusProcessing,
		" complete ": StatusCompleted, "completed": StatusCompleted, "error": StatusFailed, "canceled": StatusCancelled} {
		got, err := ParseStatus(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for in, want := range map[string]RunSource{"upload": SourceUpload, "manual_upload": SourceUpload, "simulator_pull": SourceSimulator,
		"simulate": SourceSimulator, "real": SourceJetDrive, "JetStream": SourceJetstream, "api": SourceAPI} {
		got, err := ParseSource(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "done", "queued2"} {
		_, err := ParseStatus(bad)
		assert.ErrorIs(t, err, ErrInvalid)
		_, err = ParseSource(bad)
		assert.ErrorIs(t, err, ErrInvalid)
	}
}

func FuzzCursor(f *testing.F) {
	f.Add(Cursor{Micros: 1700000000000000, ID: strings.Repeat("a", 32)}.String())
	f.Add(Cursor{Sort: SortPeakHP, Peak: 101.5, Micros: -5, ID: strings.Repeat("b", 32)}.String())
	f.Add("")
	f.Add("MTIzLmFiYw")
	f.Add("%%%")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok, err := parseCursor(s)
		if err != nil {
			if !isInvalid(err) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if !ok {
			if s != "" {
				t.Fatalf("%q: no cursor and no error", s)
			}
			return
		}
		c2, ok2, err := parseCursor(c.String())
		if err != nil || !ok2 || c2 != c {
			t.Fatalf("%q: round trip %+v -> %+v, %v", s, c, c2, err)
		}
	})
}

func isInvalid(err error) bool {
	_, ok := err.(*InvalidError)
	return ok
}

func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,2]`, `"x\u0000"`, `{"a":`, `nul`, `{"\u0000":1}`, `1e999`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkJSON("settings", b)
		if err == nil && !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		if err != nil && !isInvalid(err) {
			t.Fatalf("error %v is not ErrInvalid", err)
		}
	})
}
