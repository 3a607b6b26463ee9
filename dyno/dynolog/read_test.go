package dynolog_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
)

func readString(t *testing.T, text string, opts dynolog.ReadOptions) (*dynolog.Reader, []dyno.Sample) {
	t.Helper()
	r, err := dynolog.NewReader(strings.NewReader(text), "test.csv", opts)
	require.NoError(t, err)
	return r, readAll(t, r)
}

func TestReaderDelimitersAndEncodings(t *testing.T) {
	cases := []struct {
		name, text string
	}{
		{"comma", "rpm,map,tps\n3000,80.5,50\n"},
		{"comma-space", "rpm, map, tps\n3000, 80.5, 50\n"},
		{"tab", "rpm\tmap\ttps\n3000\t80.5\t50\n"},
		{"semicolon decimal comma", "rpm;map;tps\n3000;80,5;50\n"},
		{"bom crlf quoted", "\ufeff\"rpm\",\"map\",\"tps\"\r\n3000,80.5,50\r\n"},
		{"all quoted", "\"rpm\",\"map\",\"tps\"\n\"3000\",\"80.5\",\"50\"\n"},
		{"no final newline", "rpm,map,tps\n3000,80.5,50"},
		{"blank lines", "rpm,map,tps\n\n3000,80.5,50\n\n"},
		{"quoted comma in header", "rpm,\"map, kPa\",tps\n3000,80.5,50\n"},
		{"trailing delimiter", "rpm, map, tps, \n3000, 80.5, 50, \n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, all := readString(t, tc.text, dynolog.ReadOptions{})
			require.Len(t, all, 1)
			assert.Equal(t, 3000.0, all[0].RPM)
			assert.Equal(t, 80.5, all[0].MAP)
			assert.Equal(t, 50.0, all[0].TPS)
			assert.Equal(t, dyno.NewChannelSet(dyno.ChanRPM, dyno.ChanMAP, dyno.ChanTPS), r.Layout().Channels)
			assert.Equal(t, 0, r.Layout().Cylinders)
		})
	}
}

func TestReaderUnits(t *testing.T) {
	cases := []struct {
		header, cell string
		opts         dynolog.ReadOptions
		get          func(s dyno.Sample) float64
		want         float64
	}{
		{"MAP (psi)", "14.5", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.MAP }, 14.5 * dyno.KPaPerPSI},
		{"map [inHg]", "29.92", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.MAP }, 29.92 * dyno.KPaPerInHg},
		{"map_kpa", "80", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.MAP }, 80},
		{"baro_inhg", "29.92", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.Baro }, 29.92 * dyno.KPaPerInHg},
		{"Baro", "29.92", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.Baro }, 29.92 * dyno.KPaPerInHg},
		{"Baro", "1013", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.Baro }, 101.3},
		{"Baro", "101.3", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.Baro }, 101.3},
		{"IAT (°F)", "212", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.IAT }, 100},
		{"iat_c", "40", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.IAT }, 40},
		{"IAT", "212", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.IAT }, 100},
		{"IAT", "40", dynolog.ReadOptions{ChannelUnits: map[dyno.Channel]dyno.Unit{dyno.ChanIAT: dyno.UnitCelsius}},
			func(s dyno.Sample) float64 { return s.IAT }, 40},
		{"Water Temp", "313.15", dynolog.ReadOptions{ColumnUnits: map[string]dyno.Unit{"water_temp": dyno.UnitKelvin}},
			func(s dyno.Sample) float64 { return s.ECT }, 40},
		{"ECT (degC)", "90", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.ECT }, 90},
		{"Torque (N·m)", "135.58179483314004", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.Torque }, 100},
		{"torque_nm", "135.58179483314004", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.Torque }, 100},
		{"Power (kW)", "74.56998715822702", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.Power }, 100},
		{"drum_speed_kmh", "160.9344", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.DrumSpeed }, 100},
		{"Engine Speed (krpm)", "4.5", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.RPM }, 4500},
		{"lambda", "0.85", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.AFR[0] }, 0.85 * 14.7},
		{"lambda", "0.85", dynolog.ReadOptions{StoichAFR: 14.57}, func(s dyno.Sample) float64 { return s.AFR[0] }, 0.85 * 14.57},
		{"lambda", "0.85", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.Lambda[0] }, 0.85},
		{"Desired Lambda", "14.36", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.AFRCommanded[0] }, 14.36},
		{"Lambda Target", "0.9", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.AFRCommanded[0] }, 0.9 * 14.7},
		{"AFR", "0.95", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.AFR[0] }, 0.95 * 14.7},
		{"AFR (afr)", "2.5", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.AFR[0] }, 2.5},
		{"AFR", "13.2", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.AFR[0] }, 13.2},
		{"Time (ms)", "1500", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.Time.Seconds() }, 1.5},
		{"time_s", "1.5", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.Time.Seconds() }, 1.5},
		{"Power", "100", dynolog.ReadOptions{}, func(s dyno.Sample) float64 { return s.Torque }, 100 * 5252.0 / 3000},
	}
	for _, tc := range cases {
		t.Run(tc.header+"="+tc.cell, func(t *testing.T) {
			text := "rpm,map,\"" + tc.header + "\"\n3000,80," + tc.cell + "\n"
			if strings.Contains(strings.ToLower(tc.header), "map") || strings.Contains(strings.ToLower(tc.header), "speed") {
				text = "\"" + tc.header + "\",rpm,x\n" + tc.cell + ",3000,0\n"
				if strings.Contains(strings.ToLower(tc.header), "engine speed") {
					text = "\"" + tc.header + "\",map\n" + tc.cell + ",80\n"
				} else if strings.Contains(strings.ToLower(tc.header), "drum") {
					text = "rpm,map,\"" + tc.header + "\"\n3000,80," + tc.cell + "\n"
				}
			}
			_, all := readString(t, text, tc.opts)
			require.Len(t, all, 1)
			assert.InDelta(t, tc.want, tc.get(all[0]), 1e-9)
		})
	}
}

func TestReaderUnitsRowCP1252(t *testing.T) {
	// A MegaLogViewer log: title lines, a units row with "°F" as the single
	// cp1252 byte 0xB0, a MARK line.
	text := "\"MS2Extra title\"\n\"Capture Date: x\"\nTime\tRPM\tMAP\tMAT\n" +
		"s\tRPM\tkPa\t\xb0F\n0.1\t1000\t50\t212\nMARK 001 - x\n0.2\t1100\t51\t32\n"
	r, all := readString(t, text, dynolog.ReadOptions{})
	require.Len(t, all, 2)
	assert.Equal(t, "msl", r.Layout().Format)
	assert.InDelta(t, 100, all[0].IAT, 1e-9)
	assert.InDelta(t, 0, all[1].IAT, 1e-9)
	assert.Equal(t, int64(1), r.Stats().Markers)
	cols := r.Columns()
	require.Len(t, cols, 4)
	assert.Equal(t, dyno.UnitFahrenheit, cols[3].Unit)
	assert.Equal(t, "MAT", cols[3].Header)
}

func TestReaderCylinders(t *testing.T) {
	// A global AFR column fills the cylinders without their own column.
	text := "rpm,map,afr,afr_r,spark,knock_f,knock_r\n3000,80,13,12,30,1,2\n"
	r, all := readString(t, text, dynolog.ReadOptions{})
	require.Len(t, all, 1)
	s := all[0]
	assert.Equal(t, 2, r.Layout().Cylinders)
	assert.Equal(t, 13.0, s.AFR[dyno.Front])
	assert.Equal(t, 12.0, s.AFR[dyno.Rear])
	assert.Equal(t, 30.0, s.Spark[dyno.Rear])
	assert.Equal(t, 2.0, s.Knock[dyno.Rear])
	assert.False(t, dyno.Has(s.AFR[2]))

	// Numbered cylinders.
	r, all = readString(t, "rpm,map,afr_meas_1,afr_meas_2,afr_meas_3,afr_meas_4\n1,2,11,12,13,14\n", dynolog.ReadOptions{})
	assert.Equal(t, 4, r.Layout().Cylinders)
	assert.Equal(t, 14.0, all[0].AFR[3])
}

func TestReaderMissingCells(t *testing.T) {
	r, all := readString(t, "time,rpm,map,tps\n0,3000,,NaN\n,3100,81,inf\n0.2, 3200 , 82 ,  \n", dynolog.ReadOptions{})
	require.Len(t, all, 3)
	assert.False(t, dyno.Has(all[0].MAP))
	assert.False(t, dyno.Has(all[0].TPS))
	assert.False(t, dyno.Has(all[1].TPS))
	assert.Equal(t, time.Duration(0), all[1].Time, "a missing time keeps the previous one")
	assert.Equal(t, 200*time.Millisecond, all[2].Time)
	assert.Equal(t, 3200.0, all[2].RPM)
	// The tps column is empty (NaN, inf, blank) in every row: a dead
	// channel the reader leaves unbound, so only map's and time's empty
	// cells count.
	assert.Equal(t, int64(2), r.Stats().MissingCells)
	assert.False(t, r.Layout().Channels.Has(dyno.ChanTPS))
}

func TestReaderPeriod(t *testing.T) {
	r, all := readString(t, "rpm,map\n1,2\n3,4\n5,6\n", dynolog.ReadOptions{Period: 20 * time.Millisecond})
	require.Len(t, all, 3)
	assert.Equal(t, 40*time.Millisecond, all[2].Time)
	assert.True(t, r.Layout().Channels.Has(dyno.ChanTime))
}

func TestReaderBadNumber(t *testing.T) {
	text := "rpm,map,tps\n3000,80,50\n3100,8O,51\n"
	r, err := dynolog.NewReader(strings.NewReader(text), "bad.csv", dynolog.ReadOptions{})
	require.NoError(t, err)
	var s dyno.Sample
	require.NoError(t, r.Next(context.Background(), &s))
	err = r.Next(context.Background(), &s)
	require.ErrorIs(t, err, dynolog.ErrBadNumber)
	var pe *dynolog.ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "bad.csv", pe.File)
	assert.Equal(t, int64(3), pe.Line)
	assert.Equal(t, "map", pe.Column)
	assert.Equal(t, 2, pe.ColumnIndex)
	assert.Equal(t, int64(len("rpm,map,tps\n3000,80,50\n3100,")), pe.Offset)
	assert.Equal(t, "8O", pe.Value)
	assert.Equal(t, `bad.csv:3: column 2 "map" (byte 28): value "8O": malformed number`, err.Error())
	assert.False(t, errors.Is(err, dynolog.ErrTooManyBadRows))
	// The error sticks.
	assert.Equal(t, err, r.Next(context.Background(), &s))
}

func TestReaderSkipBadRows(t *testing.T) {
	text := "time,rpm,map\n0,3000,80\n0.1,x,80\n0.2\n0.3,3100,81\nzz,3200,82\n0.5,3300,83\n"
	r, all := readString(t, text, dynolog.ReadOptions{MaxBadRows: -1})
	require.Len(t, all, 3)
	assert.Equal(t, 3300.0, all[2].RPM)
	st := r.Stats()
	assert.Equal(t, map[dynolog.BadRowReason]int64{
		dynolog.ReasonBadNumber: 1, dynolog.ReasonShortRow: 1, dynolog.ReasonBadTime: 1,
	}, st.Skipped)

	// A limit of 2 fails at the third bad row.
	r, err := dynolog.NewReader(strings.NewReader(text), "x.csv", dynolog.ReadOptions{MaxBadRows: 2})
	require.NoError(t, err)
	var s dyno.Sample
	for err == nil {
		err = r.Next(context.Background(), &s)
	}
	require.ErrorIs(t, err, dynolog.ErrTooManyBadRows)
	require.ErrorIs(t, err, dynolog.ErrBadTime)
	var pe *dynolog.ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, int64(6), pe.Line)
	assert.Equal(t, 1, pe.ColumnIndex)
}

func TestReaderHeaderErrors(t *testing.T) {
	cases := []struct {
		name, text string
		opts       dynolog.ReadOptions
		want       error
		msg        string
	}{
		{"empty", "", dynolog.ReadOptions{}, dynolog.ErrNoHeader, "test.csv: (byte 0): no header line"},
		{"one column", "rpm\n1\n2\n", dynolog.ReadOptions{}, dynolog.ErrNoHeader, "no header line"},
		{"missing map", "rpm,tps,foo\n1,2,3\n", dynolog.ReadOptions{Required: []dyno.Channel{dyno.ChanRPM, dyno.ChanMAP}},
			dynolog.ErrMissingColumns, `test.csv: missing required columns (format csv): map; headers found: "rpm", "tps", "foo"`},
		{"missing rpm by default", "a,b\n1,2\n", dynolog.ReadOptions{}, dynolog.ErrMissingColumns, "columns (format csv): rpm;"},
		{"missing both", "a,b\n1,2\n", dynolog.ReadOptions{Required: []dyno.Channel{dyno.ChanRPM, dyno.ChanMAP}},
			dynolog.ErrMissingColumns, "rpm, map;"},
		{"bad format", "rpm,map\n1,2\n", dynolog.ReadOptions{Format: "wp9"}, dynolog.ErrUnknownFormat, `"wp9"`},
		{"bad unit", "rpm,map\n1,2\n", dynolog.ReadOptions{ChannelUnits: map[dyno.Channel]dyno.Unit{dyno.ChanMAP: dyno.UnitNm}},
			dynolog.ErrUnknownFormat, "does not measure"},
		{"too long", "rpm,map\n" + strings.Repeat("1", 200) + "\n", dynolog.ReadOptions{MaxLineBytes: 100}, dynolog.ErrLineTooLong, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := dynolog.NewReader(strings.NewReader(tc.text), "test.csv", tc.opts)
			if err == nil {
				var s dyno.Sample
				for err == nil {
					err = r.Next(context.Background(), &s)
				}
			}
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestReaderLongLine(t *testing.T) {
	// Lines longer than the read buffer are assembled.
	hdr := "rpm,map," + strings.Repeat("x,", 50000) + "tps\n"
	row := "3000,80," + strings.Repeat("1,", 50000) + "42\n"
	_, all := readString(t, hdr+row+row, dynolog.ReadOptions{})
	require.Len(t, all, 2)
	assert.Equal(t, 42.0, all[1].TPS)
}

func TestReaderContext(t *testing.T) {
	r, err := dynolog.NewReader(strings.NewReader("rpm,map\n1,2\n"), "x", dynolog.ReadOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var s dyno.Sample
	require.ErrorIs(t, r.Next(ctx, &s), context.Canceled)
}

func TestFormatDetection(t *testing.T) {
	cases := []struct {
		text, want string
	}{
		{"Time, (DWRT CPU) Engine RPM, (PV) Manifold Absolute Pressure\n0, 4.5, 90\n", "winpep8"},
		{"Time,(PV) Engine Speed,(PV) Manifold Absolute Pressure\n0,4500,90\n", "powervision"},
		{"Time,(Harley - ECU Type 22 SW Level 621) Engine Speed,(Harley - ECU Type 22 SW Level 621) Manifold Absolute Pressure\n0,4.5,90\n", "powervision"},
		{"\"title\"\nTime\tRPM\tMAP\n0\t1\t2\n", "msl"},
		{"Time;RPM;MAP\ns;rpm;kPa\n0;1;2\n", "msl"},
		{"rpm,map_kpa,torque\n1,2,3\n", "csv"},
	}
	for _, tc := range cases {
		r, all := readString(t, tc.text, dynolog.ReadOptions{})
		assert.Equal(t, tc.want, r.Layout().Format, tc.text)
		require.Len(t, all, 1)
		if tc.want == "winpep8" || tc.want == "powervision" {
			assert.Equal(t, 4500.0, all[0].RPM, tc.text)
		}
	}
	// ReadOptions.Format forces the format.
	r, err := dynolog.NewReader(strings.NewReader("rpm,map\n4.5,90\n"), "x", dynolog.ReadOptions{Format: dynolog.FormatWinPEP8})
	require.NoError(t, err)
	assert.Equal(t, "winpep8", r.Layout().Format)
	all := readAll(t, r)
	assert.Equal(t, 4500.0, all[0].RPM)
	for _, f := range []string{dynolog.FormatCSV, dynolog.FormatPowerVision, dynolog.FormatMSL} {
		r, err := dynolog.NewReader(strings.NewReader("rpm,map\n4.5,90\n"), "x", dynolog.ReadOptions{Format: f})
		require.NoError(t, err)
		assert.Equal(t, f, r.Layout().Format)
	}
}

// The Pro-XY vector of jetstream-dyno spec §5.10.
const proXY = `"Dynojet Power Vision Log File"
"Format:","Pro-XY CSV 1.0.0"
0,"driver","id","RPM","rpm","Engine speed","#ff0000"
1,"driver","id","MAP","kPa","Manifold pressure","#00ff00"
2,"driver","id","WBO2 F","AFR","Front wideband","#0000ff"
3,"driver","id","Set Lambda","","Target","#000000"

"Time(ms)","Signal","Value"
0,0,1000
0,1,35.5
10,2,14.2
20,0,3E8
20,3,0.85
30,1,-1.5
`

func TestProXY(t *testing.T) {
	r, all := readString(t, proXY, dynolog.ReadOptions{})
	assert.Equal(t, "proxy", r.Layout().Format)
	assert.Equal(t, "Pro-XY CSV 1.0.0", r.ProXYVersion())
	require.Len(t, all, 4)
	wantMAP := []float64{35.5, 35.5, 35.5, -1.5}
	wantAFR := []float64{math.NaN(), 14.2, 14.2, 14.2}
	wantCmd := []float64{math.NaN(), math.NaN(), 12.495, 12.495}
	for i, s := range all {
		assert.Equal(t, time.Duration(i)*10*time.Millisecond, s.Time)
		assert.Equal(t, 1000.0, s.RPM, "row %d (3E8 is hex)", i)
		assert.Equal(t, wantMAP[i], s.MAP, "row %d", i)
		if math.IsNaN(wantAFR[i]) {
			assert.False(t, dyno.Has(s.AFR[0]))
		} else {
			assert.Equal(t, wantAFR[i], s.AFR[0])
		}
		if math.IsNaN(wantCmd[i]) {
			assert.False(t, dyno.Has(s.AFRCommanded[0]))
		} else {
			assert.InDelta(t, wantCmd[i], s.AFRCommanded[0], 1e-12)
		}
	}
	// Bad rows in the long format.
	_, err := dynolog.NewReader(strings.NewReader(`"Dynojet Power Vision Log File"`+"\n0,1,2\n"), "p", dynolog.ReadOptions{})
	require.ErrorIs(t, err, dynolog.ErrNoHeader)
	r, err = dynolog.NewReader(strings.NewReader(proXY+"40,9,1\n"), "p", dynolog.ReadOptions{})
	require.NoError(t, err)
	var s dyno.Sample
	for err == nil {
		err = r.Next(context.Background(), &s)
	}
	require.ErrorIs(t, err, dynolog.ErrBadNumber)
	assert.Contains(t, err.Error(), "p:15: column 2")
}

func TestMatchHeader(t *testing.T) {
	aliases := dynolog.DefaultAliases()
	cases := []struct {
		header string
		ch     dyno.Channel
		cyl    int
		unit   dyno.Unit
	}{
		{"Engine_RPM", dyno.ChanRPM, 0, dyno.UnitAuto},
		{"  MAP kPa ", dyno.ChanMAP, 0, dyno.UnitAuto},
		{"MAP (psi)", dyno.ChanMAP, 0, dyno.UnitPSI},
		{"AFR Meas F", dyno.ChanAFR, dyno.Front, dyno.UnitAFR},
		{"afr_cmd_r", dyno.ChanAFRCommanded, dyno.Rear, dyno.UnitAFR},
		{"WBO2 R", dyno.ChanAFR, dyno.Rear, dyno.UnitAuto},
		{"(Harley - ECU Type 14 SW Level 141) Spark Advance Rear", dyno.ChanSpark, dyno.Rear, dyno.UnitDegrees},
		{"(Some Module) Engine Speed", dyno.ChanRPM, 0, dyno.UnitAuto},
		{"iat_f", dyno.ChanIAT, 0, dyno.UnitFahrenheit},
		{"Lambda_F", dyno.ChanLambda, dyno.Front, dyno.UnitLambda},
		{"kr_r", dyno.ChanKnock, dyno.Rear, dyno.UnitDegrees},
		{"timestamp_ms", dyno.ChanTime, 0, dyno.UnitMillis},
	}
	for _, tc := range cases {
		m, ok := dynolog.MatchHeader(tc.header, aliases)
		require.True(t, ok, tc.header)
		assert.Equal(t, tc.ch, m.Alias.Channel, tc.header)
		if tc.ch == dyno.ChanAFR || tc.ch == dyno.ChanSpark || tc.ch == dyno.ChanKnock || tc.ch == dyno.ChanLambda || tc.ch == dyno.ChanAFRCommanded {
			assert.Equal(t, tc.cyl, m.Alias.Cyl, tc.header)
		}
		assert.Equal(t, tc.unit, m.Unit, tc.header)
	}
	for _, h := range []string{"", "Timestamp2", "AFR1", "O2", "Torque (uncorrected)", "MAP (bananas)", "Boost PSI"} {
		_, ok := dynolog.MatchHeader(h, aliases)
		assert.False(t, ok, h)
	}
}

func TestParseUnit(t *testing.T) {
	cases := map[string]dyno.Unit{
		"kPa": dyno.UnitKPa, "(PSI)": dyno.UnitPSI, "°F": dyno.UnitFahrenheit, "deg. C": dyno.UnitCelsius,
		"N·m": dyno.UnitNm, "lbft": dyno.UnitFtLb, "km/h": dyno.UnitKMH, "Lambda": dyno.UnitLambda, "hPa": dyno.UnitMbar,
	}
	for s, want := range cases {
		got, ok := dyno.ParseUnit(s)
		assert.True(t, ok, s)
		assert.Equal(t, want, got, s)
	}
	_, ok := dyno.ParseUnit("O2")
	assert.False(t, ok)
	for u := dyno.UnitRPM; u <= dyno.UnitNewton; u++ {
		assert.InDelta(t, 12.5, u.ToCanonical(u.FromCanonical(12.5)), 1e-12, u.String())
	}
}

func TestReaderColumnsAndUserAliases(t *testing.T) {
	text := "Zeit,Drehzahl,Ladedruck,Moment\n0.5,3000,80,100\n"
	r, all := readString(t, text, dynolog.ReadOptions{Aliases: []dynolog.Alias{
		{Name: "zeit", Channel: dyno.ChanTime, Unit: dyno.UnitSeconds},
		{Name: "Drehzahl", Channel: dyno.ChanRPM},
		{Name: "Ladedruck", Channel: dyno.ChanMAP, Unit: dyno.UnitMbar},
		{Name: "moment", Channel: dyno.ChanTorque, Unit: dyno.UnitNm},
	}})
	require.Len(t, all, 1)
	assert.Equal(t, 500*time.Millisecond, all[0].Time)
	assert.Equal(t, 8.0, all[0].MAP)
	assert.InDelta(t, 100/dyno.NmPerFtLb, all[0].Torque, 1e-12)
	cols := r.Columns()
	require.Len(t, cols, 4)
	assert.Equal(t, dynolog.Column{Index: 2, Header: "Ladedruck", Channel: dyno.ChanMAP, Unit: dyno.UnitMbar, Alias: "ladedruck"}, cols[2])
	assert.Equal(t, []string{"Zeit", "Drehzahl", "Ladedruck", "Moment"}, r.Headers())

	// NoDefaultAliases: only the caller's.
	_, err := dynolog.NewReader(strings.NewReader("rpm,map\n1,2\n"), "x", dynolog.ReadOptions{NoDefaultAliases: true})
	require.ErrorIs(t, err, dynolog.ErrMissingColumns)
}

func TestReaderSpecHeaders(t *testing.T) {
	// The Jetstream converter's input of jetstream-dyno spec §5.9.
	r, all := readString(t, "Time,Engine_RPM,MAP_kPa,Torque,AFR_Front,AFR_Rear,Spark_F,TPS,IAT,Lambda_Front,Extra Col\n"+
		"0.1,3000,80,90,13.1,13.2,28,50,77,0.9,x\n", dynolog.ReadOptions{})
	require.Len(t, all, 1)
	s := all[0]
	assert.Equal(t, 100*time.Millisecond, s.Time)
	assert.Equal(t, []float64{3000, 80, 90, 13.1, 13.2, 28, 50, 0.9}, []float64{s.RPM, s.MAP, s.Torque,
		s.AFR[dyno.Front], s.AFR[dyno.Rear], s.Spark[dyno.Front], s.TPS, s.Lambda[dyno.Front]})
	assert.InDelta(t, 25, s.IAT, 1e-12)
	assert.Len(t, r.Columns(), 10, "Extra Col is not mapped")

	// The JetDrive capture / simulator export of §2.2.5.
	_, all = readString(t, "timestamp_ms,RPM,Torque,Horsepower,AFR,MAP_kPa,TPS,IAT\n40,3000,90,51.4,12.9,95,100,80\n", dynolog.ReadOptions{})
	require.Len(t, all, 1)
	s = all[0]
	assert.Equal(t, 40*time.Millisecond, s.Time)
	assert.Equal(t, []float64{3000, 90, 51.4, 12.9, 95, 100}, []float64{s.RPM, s.Torque, s.Power, s.AFR[0], s.MAP, s.TPS})

	// The predecessor's canonical lower-case WinPEP-like file of §2.2.6.
	r, all = readString(t, "rpm,map_kpa,torque,ve_f,ve_r,spark_f,spark_r,afr_cmd_f,afr_cmd_r,afr_meas_f,afr_meas_r,iat,knock,vbatt,tps\n"+
		"2000,60,80,85,83.5,24,23,13.2,13.2,13.1,13.15,95,1,14.2,15\n", dynolog.ReadOptions{})
	require.Len(t, all, 1)
	assert.Equal(t, 2, r.Layout().Cylinders)
	assert.Equal(t, 1.0, all[0].Knock[dyno.Rear])
	assert.Equal(t, 13.15, all[0].AFR[dyno.Rear])
}

func TestReaderUserAliasPrecedence(t *testing.T) {
	// A caller's per-cylinder alias takes its slot only; the built-in
	// aliases still fill the others. (An AFR of 0 is no reading.)
	_, all := readString(t, "rpm,map,Spark Vorne,spark_r,afr_meas_f,afr_meas_r,LC2\n1,2,30,31,0,0,12.7\n", dynolog.ReadOptions{
		Aliases: []dynolog.Alias{{Name: "spark vorne", Channel: dyno.ChanSpark, Cyl: dyno.Front}}})
	require.Len(t, all, 1)
	assert.Equal(t, []float64{30, 31}, all[0].Spark[:2])
	assert.False(t, dyno.Has(all[0].AFR[0]) || dyno.Has(all[0].AFR[1]))
	// A caller's all-cylinder alias replaces the built-in columns of its
	// channel: one sensor, a combined AFR in slot 0.
	r, all := readString(t, "rpm,map,afr_meas_f,afr_meas_r,LC2\n1,2,0,0,12.7\n", dynolog.ReadOptions{
		Aliases: []dynolog.Alias{{Name: "lc2", Channel: dyno.ChanAFR, Cyl: dynolog.AllCylinders}}})
	assert.Equal(t, 12.7, all[0].AFR[0])
	assert.False(t, dyno.Has(all[0].AFR[1]))
	assert.True(t, r.Layout().CombinedAFR)
}

func TestReaderWallclockAfterUnitsRow(t *testing.T) {
	r, all := readString(t, "Timestamp;RPM;MAP\n;rpm;kPa\n2025-12-18 23:00:24.500;1000;40\n2025-12-18 23:00:25.000;1100;41\n", dynolog.ReadOptions{})
	require.Len(t, all, 2)
	assert.Equal(t, "msl", r.Layout().Format)
	assert.Equal(t, 500*time.Millisecond, all[1].Time)
	assert.Equal(t, int64(4), r.Stats().Lines)
}

func TestReaderBadAlias(t *testing.T) {
	for _, a := range []dynolog.Alias{
		{Name: "x", Channel: dyno.ChanAFR, Cyl: dyno.MaxCylinders},
		{Name: "x", Channel: dyno.ChanSpark, Cyl: -2},
		{Name: " ", Channel: dyno.ChanRPM},
		{Name: "x", Channel: dyno.ChanMAP, Unit: dyno.UnitCelsius},
		{Name: "x", Channel: dyno.Channel(200)},
	} {
		_, err := dynolog.NewReader(strings.NewReader("rpm,map,x\n1,2,3\n"), "a.csv", dynolog.ReadOptions{Aliases: []dynolog.Alias{a}})
		require.ErrorIs(t, err, dynolog.ErrBadAlias, "%+v", a)
	}
}
