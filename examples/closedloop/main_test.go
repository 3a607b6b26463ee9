package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	for _, tt := range []struct {
		name string
		o    options
		want []string
	}{
		{"lean learned", options{scenario: "lean", seed: 1, learn: true, delay: 400 * time.Millisecond, iterations: 6, plan: true},
			[]string{"converged after 4 iterations", "on kept cells", "next tests", "hold"}},
		{"delay left in", options{scenario: "rich", seed: 2, delay: 400 * time.Millisecond, iterations: 6},
			[]string{"oscillating"}},
		{"coarse grid", options{scenario: "random", seed: 3, learn: true, delay: 400 * time.Millisecond, rpmStep: 500, iterations: 6},
			[]string{"converged after", "VE error RMS"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			require.NoError(t, run(t.Context(), &out, tt.o))
			for _, w := range tt.want {
				assert.Contains(t, out.String(), w)
			}
			assert.Equal(t, len(strings.Split(out.String(), "\n")) > 5, true)
		})
	}
}

func TestRunJSON(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), &out, options{scenario: "perfect", seed: 1, learn: true, delay: 100 * time.Millisecond, iterations: 2, json: true}))
	var doc struct {
		Report struct {
			Status     string `json:"status"`
			Iterations []struct {
				MaxAFRError float64 `json:"max_afr_error"`
			} `json:"iterations"`
		} `json:"report"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &doc))
	assert.Equal(t, "converged", doc.Report.Status)
	assert.NotEmpty(t, doc.Report.Iterations)
}

func TestRunErrors(t *testing.T) {
	var out bytes.Buffer
	require.ErrorContains(t, run(t.Context(), &out, options{scenario: "nope", iterations: 1}), `unknown scenario "nope"`)
	require.ErrorContains(t, run(t.Context(), &out, options{scenario: "lean", iterations: 1, rpmStep: 7}), "RPMStep 7")
}
