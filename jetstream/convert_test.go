package jetstream_test

import (
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/jetstream"
	"github.com/dynoai/dynoai/jetstream/jetstreamtest"
)

func readAll(t *testing.T, csv string, o jetstream.ReaderOptions) ([]dyno.Sample, *jetstream.Reader) {
	t.Helper()
	r, err := jetstream.NewReader(strings.NewReader(csv), o)
	require.NoError(t, err)
	got, err := dyno.Collect(context.Background(), r)
	require.NoError(t, err)
	return got, r
}

func TestReaderUnits(t *testing.T) {
	const eps = 1e-6
	tests := []struct {
		name string
		csv  string
		o    jetstream.ReaderOptions
		want func(t *testing.T, s dyno.Sample)
	}{
		{"spec 5.9 names", "Time,Engine_RPM,MAP_kPa,Torque,AFR_Front,AFR_Rear,Spark_F,TPS,IAT,Lambda_Front,Extra Col\n" +
			"0.5,3000,80,90,13.1,13.3,28,95,86,0.89,x\n", jetstream.ReaderOptions{},
			func(t *testing.T, s dyno.Sample) {
				assert.Equal(t, 500*time.Millisecond, s.Time)
				assert.InDelta(t, 3000, s.RPM, eps)
				assert.InDelta(t, 80, s.MAP, eps)
				assert.InDelta(t, 90, s.Torque, eps)
				assert.InDelta(t, 13.1, s.AFR[dyno.Front], eps)
				assert.InDelta(t, 13.3, s.AFR[dyno.Rear], eps)
				assert.InDelta(t, 28, s.Spark[dyno.Front], eps)
				assert.InDelta(t, 30, s.IAT, eps) // 86 °F
				assert.InDelta(t, 0.89, s.Lambda[dyno.Front], eps)
			}},
		{"psi and ft-lb suffix", "rpm,MAP_psi,Torque_ftlb\n3000,5,100\n", jetstream.ReaderOptions{},
			func(t *testing.T, s dyno.Sample) {
				assert.InDelta(t, 5*dyno.KPaPerPSI, s.MAP, eps)
				assert.InDelta(t, 100, s.Torque, eps) // stays ft-lb: the predecessor turned it into N·m
			}},
		{"N·m to ft-lb", "RPM,MAP,Torque_Nm\n3000,80,135.58179483314004\n", jetstream.ReaderOptions{},
			func(t *testing.T, s dyno.Sample) { assert.InDelta(t, 100, s.Torque, 1e-9) }},
		{"forced N·m", "RPM,MAP,Torque\n3000,80,135.58179483314004\n",
			jetstream.ReaderOptions{ChannelUnits: map[dyno.Channel]dyno.Unit{dyno.ChanTorque: dyno.UnitNm}},
			func(t *testing.T, s dyno.Sample) { assert.InDelta(t, 100, s.Torque, 1e-9) }},
		{"inHg", "RPM,MAP_inHg,Torque\n3000,29.92,90\n", jetstream.ReaderOptions{},
			func(t *testing.T, s dyno.Sample) { assert.InDelta(t, 29.92*dyno.KPaPerInHg, s.MAP, eps) }},
		{"lambda to AFR", "RPM,MAP,Torque,Lambda_Front,Lambda_Rear\n3000,80,90,0.9,0.8\n", jetstream.ReaderOptions{},
			func(t *testing.T, s dyno.Sample) {
				assert.InDelta(t, 0.9*14.7, s.AFR[dyno.Front], eps)
				assert.InDelta(t, 0.8*14.7, s.AFR[dyno.Rear], eps)
			}},
		{"lambda with stoich", "RPM,MAP,Torque,Lambda_Front\n3000,80,90,1\n", jetstream.ReaderOptions{StoichAFR: 14.57},
			func(t *testing.T, s dyno.Sample) { assert.InDelta(t, 14.57, s.AFR[dyno.Front], eps) }},
		{"gauge boost psi", "RPM,Boost_psi,Torque\n3000,5,90\n", jetstream.ReaderOptions{},
			func(t *testing.T, s dyno.Sample) {
				assert.InDelta(t, 5*dyno.KPaPerPSI+jetstream.StandardBaroKPa, s.MAP, eps)
			}},
		{"gauge boost with baro option", "RPM,Boost_kPa,Torque\n3000,20,90\n", jetstream.ReaderOptions{BaroKPa: 98},
			func(t *testing.T, s dyno.Sample) { assert.InDelta(t, 118, s.MAP, eps) }},
		{"empty cell is missing", "RPM,MAP,Torque,AFR_F\n3000,80,90,\n", jetstream.ReaderOptions{},
			func(t *testing.T, s dyno.Sample) { assert.False(t, dyno.Has(s.AFR[dyno.Front])) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := readAll(t, tc.csv, tc.o)
			require.Len(t, got, 1)
			tc.want(t, got[0])
		})
	}
}

func TestReaderErrors(t *testing.T) {
	tests := []struct {
		name    string
		csv     string
		o       jetstream.ReaderOptions
		is      error
		mention []string
	}{
		{"missing MAP and torque (spec 5.9)", "RPM,Boost_bananas,Torque_kgm\n3000,5,100\n", jetstream.ReaderOptions{},
			dynolog.ErrMissingColumns, []string{"map", "torque", `"Torque_kgm"`}},
		{"missing MAP", "Time,Engine_RPM,Torque\n0,3000,90\n", jetstream.ReaderOptions{}, dynolog.ErrMissingColumns, []string{"map"}},
		{"strict unknown", "RPM,MAP,Torque,Extra Col\n3000,80,90,1\n", jetstream.ReaderOptions{Strict: true},
			jetstream.ErrUnknownColumn, []string{`"Extra Col"`, "column 4"}},
		{"strict duplicate", "RPM,Engine_RPM,MAP,Torque\n3000,3000,80,90\n", jetstream.ReaderOptions{Strict: true},
			jetstream.ErrDuplicateColumn, []string{"Engine_RPM"}},
		{"empty input", "", jetstream.ReaderOptions{}, dynolog.ErrNoHeader, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := jetstream.NewReader(strings.NewReader(tc.csv), tc.o)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.is)
			for _, m := range tc.mention {
				assert.Contains(t, err.Error(), m)
			}
		})
	}
}

func TestReaderBadCellNamesPlace(t *testing.T) {
	r, err := jetstream.NewReader(strings.NewReader("RPM,MAP,Torque\n3000,80,90\n3100,8x0,91\n"), jetstream.ReaderOptions{Name: "JS-1"})
	require.NoError(t, err)
	var s dyno.Sample
	require.NoError(t, r.Next(context.Background(), &s))
	err = r.Next(context.Background(), &s)
	var pe *dynolog.ParseError
	require.ErrorAs(t, err, &pe)
	assert.ErrorIs(t, err, dynolog.ErrBadNumber)
	assert.Equal(t, int64(3), pe.Line)
	assert.Equal(t, "MAP", pe.Column)
	assert.Equal(t, int64(len("RPM,MAP,Torque\n3000,80,90\n3100,")), pe.Offset)
	assert.Contains(t, err.Error(), "JS-1")
	assert.Equal(t, err, r.Next(context.Background(), &s), "the error ends the stream")
}

func TestReaderIgnoredColumns(t *testing.T) {
	_, r := readAll(t, "RPM,Engine_RPM,MAP,Torque,Extra Col\n3000,3001,80,90,1\n", jetstream.ReaderOptions{})
	assert.ElementsMatch(t, []string{"Engine_RPM", "Extra Col"}, r.Ignored())
}

// Every dialect the stub serves converts to the same physical pull.
func TestReaderDialects(t *testing.T) {
	for d := jetstreamtest.DialectKPa; d < jetstreamtest.DialectNoMAP; d++ {
		t.Run(d.String(), func(t *testing.T) {
			p := jetstreamtest.Pull{PeakHP: 110, PeakTorque: 120, Points: 400, Seed: 3, Dialect: d}
			got, r := readAll(t, string(p.CSV()), jetstream.ReaderOptions{})
			require.Len(t, got, 400)
			assert.Equal(t, 2, r.Layout().Cylinders)
			peakHP, peakTQ := 0.0, 0.0
			for _, s := range got {
				require.True(t, dyno.Has(s.RPM) && dyno.Has(s.MAP) && dyno.Has(s.Torque), "row %+v", s)
				assert.Greater(t, s.MAP, 80.0)
				assert.Less(t, s.MAP, 105.0)
				assert.Greater(t, s.AFR[dyno.Front], 11.0)
				assert.Less(t, s.AFR[dyno.Rear], 14.5)
				peakHP = math.Max(peakHP, s.Torque*s.RPM/5252)
				peakTQ = math.Max(peakTQ, s.Torque)
			}
			assert.InDelta(t, 120, peakTQ, 0.05)
			assert.InDelta(t, 110, peakHP, 0.2)
		})
	}
	_, err := jetstream.NewReader(strings.NewReader(string(jetstreamtest.Pull{PeakHP: 80, PeakTorque: 90, Dialect: jetstreamtest.DialectNoMAP}.CSV())), jetstream.ReaderOptions{})
	assert.ErrorIs(t, err, dynolog.ErrMissingColumns)
}

func TestReaderCancelled(t *testing.T) {
	r, err := jetstream.NewReader(strings.NewReader("RPM,MAP,Torque\n3000,80,90\n"), jetstream.ReaderOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var s dyno.Sample
	err = r.Next(ctx, &s)
	assert.True(t, errors.Is(err, context.Canceled) || err == nil || err == io.EOF, "got %v", err)
}
