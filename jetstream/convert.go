package jetstream

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
)

// StandardBaroKPa is the barometric pressure a Reader adds to a gauge boost
// column when the log has no barometer and ReaderOptions.BaroKPa is zero.
const StandardBaroKPa = 101.325

// Errors a Reader in Strict mode reports, inside a *dynolog.ParseError naming
// the column.
var (
	// ErrUnknownColumn: a header maps to no channel.
	ErrUnknownColumn = errors.New("unknown column")
	// ErrDuplicateColumn: two headers map to the same channel and cylinder
	// (the predecessor wrote both under one name, with the same values).
	ErrDuplicateColumn = errors.New("duplicate column")
)

// JetstreamAliases returns the column names of Jetstream's raw CSV (spec
// §1.7) that dynolog.DefaultAliases lacks, as dyno aliases. A Reader tries them
// before the defaults. Torque, MAP and temperature columns without a unit in
// their name take ReaderOptions' units; a unit suffix ("MAP_psi",
// "Torque_Nm", "IAT_C") is understood by dyno's alias machinery.
func JetstreamAliases() []dynolog.Alias {
	a := []dynolog.Alias{
		{Name: "spark front", Channel: dyno.ChanSpark, Cyl: dyno.Front, Unit: dyno.UnitDegrees},
		{Name: "spark rear", Channel: dyno.ChanSpark, Cyl: dyno.Rear, Unit: dyno.UnitDegrees},
		{Name: "ignition front", Channel: dyno.ChanSpark, Cyl: dyno.Front, Unit: dyno.UnitDegrees},
		{Name: "ignition rear", Channel: dyno.ChanSpark, Cyl: dyno.Rear, Unit: dyno.UnitDegrees},
		{Name: "afr cmd front", Channel: dyno.ChanAFRCommanded, Cyl: dyno.Front},
		{Name: "afr cmd rear", Channel: dyno.ChanAFRCommanded, Cyl: dyno.Rear},
		{Name: "engine torque", Channel: dyno.ChanTorque},
		{Name: "boost", Channel: dyno.ChanMAP},
		{Name: "boost kpa", Channel: dyno.ChanMAP, Unit: dyno.UnitKPa},
		{Name: "boost pressure", Channel: dyno.ChanMAP},
	}
	for i := range a {
		a[i].Name = dynolog.NormalizeHeader(a[i].Name)
	}
	return a
}

// ReaderOptions configures a Reader. The zero value reads Jetstream's raw CSV
// as the predecessor's converter assumed it: torque in ft·lb, MAP in kPa and
// temperatures in °F unless a column's name states a unit ("Torque_Nm",
// "MAP_psi", "IAT_C"); lambda columns fill AFR for cylinders without one.
type ReaderOptions struct {
	// Name identifies the input in errors and in Layout.Name.
	Name string
	// Aliases are tried before JetstreamAliases and dynolog.DefaultAliases.
	Aliases []dynolog.Alias
	// ChannelUnits forces the unit of every column of a channel, whatever
	// its name says, for example {dyno.ChanTorque: dyno.UnitNm} for an
	// export whose plain "Torque" is in N·m.
	ChannelUnits map[dyno.Channel]dyno.Unit
	// StoichAFR converts lambda to AFR; 0 means dyno.DefaultStoichAFR.
	StoichAFR float64
	// BaroKPa is added to gauge boost columns ("Boost", "Boost_psi") to make
	// absolute MAP; 0 means a Baro column if there is one, else
	// StandardBaroKPa.
	BaroKPa float64
	// Strict makes a column that maps to no channel an error instead of
	// being ignored.
	Strict bool
	// Required lists the channels the input must have; nil means RPM, MAP
	// and torque (the predecessor's validator).
	Required []dyno.Channel
	// MaxBadRows is how many malformed rows are skipped before reading
	// fails: 0 fails at the first, negative never fails (see dynolog.ReadOptions).
	MaxBadRows int
}

// Reader converts Jetstream's raw CSV into dyno samples, one row at a time:
// a dyno.Source. It is dyno's CSV reader (dynolog.NewReader with Format dynolog.FormatCSV) given
// Jetstream's aliases, with two additions: gauge boost columns become
// absolute MAP, and Strict mode refuses unknown and duplicate columns.
type Reader struct {
	o       ReaderOptions
	r       *dynolog.Reader
	gauge   bool // the MAP column is a gauge boost
	ignored []string
}

// NewReader reads the header of a Jetstream raw CSV from r and returns a
// Reader positioned at the first data row. A header without a required
// channel is a *dynolog.MissingColumnsError (errors.Is dynolog.ErrMissingColumns)
// naming the missing channels and the headers found; an empty input is
// dynolog.ErrNoHeader.
func NewReader(r io.Reader, o ReaderOptions) (*Reader, error) {
	if o.Name == "" {
		o.Name = "jetstream.csv"
	}
	if o.Required == nil {
		o.Required = []dyno.Channel{dyno.ChanRPM, dyno.ChanMAP, dyno.ChanTorque}
	}
	aliases := append(slices.Clone(o.Aliases), JetstreamAliases()...)
	dr, err := dynolog.NewReader(r, o.Name, dynolog.ReadOptions{
		Format:       dynolog.FormatCSV,
		Aliases:      aliases,
		ChannelUnits: o.ChannelUnits,
		StoichAFR:    o.StoichAFR,
		Required:     o.Required,
		MaxBadRows:   o.MaxBadRows,
	})
	if err != nil {
		return nil, err
	}
	rd := &Reader{o: o, r: dr}
	mapped := map[int]bool{}
	for _, c := range dr.Columns() {
		mapped[c.Index] = true
		if c.Channel == dyno.ChanMAP && strings.HasPrefix(dynolog.NormalizeHeader(c.Header), "boost") {
			rd.gauge = true
		}
	}
	all := append(aliases, dynolog.DefaultAliases()...)
	for i, h := range dr.Headers() {
		if mapped[i] || strings.TrimSpace(h) == "" {
			continue
		}
		rd.ignored = append(rd.ignored, h)
		if !o.Strict {
			continue
		}
		kind := ErrUnknownColumn
		if _, ok := dynolog.MatchHeader(h, all); ok {
			kind = ErrDuplicateColumn
		}
		return nil, &dynolog.ParseError{File: o.Name, Line: 1, Column: h, ColumnIndex: i + 1, Err: kind}
	}
	return rd, nil
}

// Columns returns how the header's columns map, in header order.
func (rd *Reader) Columns() []dynolog.Column { return rd.r.Columns() }

// Ignored returns the headers that map to no channel, or lost to a better
// match for the same channel.
func (rd *Reader) Ignored() []string { return slices.Clone(rd.ignored) }

// Rows returns how many samples the reader has yielded.
func (rd *Reader) Rows() int { return int(rd.r.Stats().Rows) }

// Layout implements dyno.Source.
func (rd *Reader) Layout() dyno.Layout {
	l := rd.r.Layout()
	l.Format = "jetstream"
	return l
}

// Next implements dyno.Source: it fills s from the next data row, in dyno's
// units. A malformed row is a *dynolog.ParseError naming the line, column and
// byte offset; it ends the stream unless MaxBadRows allows it.
func (rd *Reader) Next(ctx context.Context, s *dyno.Sample) error {
	if err := rd.r.Next(ctx, s); err != nil {
		return err
	}
	if rd.gauge && dyno.Has(s.MAP) {
		switch {
		case rd.o.BaroKPa > 0:
			s.MAP += rd.o.BaroKPa
		case dyno.Has(s.Baro):
			s.MAP += s.Baro
		default:
			s.MAP += StandardBaroKPa
		}
	}
	return nil
}
