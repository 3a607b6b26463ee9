package httpapi

// Live tuning: with JetDrive configured, a live session (started by POST
// /api/jetdrive/session) watches the stream for pulls, records each as a
// run analyzed by the queue like an upload, and accumulates the session in
// a ve.Session whose snapshot the routes serve and stream.
//
// Pull detection is dyno.PullDetector's, on every sample of the stream:
//
//   - A pull starts at a sample with the throttle wide open (TPS ≥
//     pull.wot_throttle_pct, default 85 %; a sample without TPS uses MAP ≥
//     pull.wot_map_kpa, default 85 kPa) and RPM not falling.
//   - It ends when the throttle has been below wide open for more than
//     0.2 s (the last WOT sample ends it), when RPM stays more than 50 rpm
//     below its peak for more than 0.1 s (the peak ends it), or at 98 % of
//     pull.redline_rpm when given.
//   - It is kept when it lasts at least pull.min_duration_s (default 2 s)
//     and spans at least pull.min_rpm_span (default 1500 rpm); its first
//     0.5 s (the throttle transient) is trimmed.
//
// A kept pull is recorded from one second before its (trimmed) start to
// the sample that ended it, at most liveMaxPullSamples samples, as a log in
// the canonical CSV (dynolog's writer), stored in the file store and
// submitted to the queue (runstore Submit) as a run of source jetdrive.
//
// JetDrive rarely carries the ECU's AFR target, so a session starts with an
// explicit target: a table, one AFR, a fuel's default table chosen by
// name, or the stream's own commanded AFR. Unless it is the stream's, the
// target is written into each sample as its commanded AFR, so the recorded
// CSV carries the target it was analyzed against and a re-analysis (or a
// download into another tool) needs nothing else.
//
// With several replicas sharing the run store, one records: starting a
// session acquires the named lease liveLeaseName in the store
// (runstore.Leaser) and renews it while the session runs; a replica that
// cannot renew it stops recording. The session lives on the replica that
// holds the lease; the others answer its routes with 409 and the holder's
// name.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dynoai/dynoai/afr"
	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/ve"
)

// Live session tuning.
const (
	liveLeaseName      = "jetdrive-recorder"
	liveLeaseTTL       = 15 * time.Second
	liveSnapshotEvery  = 500 * time.Millisecond
	liveQueue          = 8192 // samples between the JetDrive hub and the session
	livePreRoll        = time.Second
	liveMaxPullSamples = 30000 // five minutes at 100 Hz
	liveLearnPrefix    = 8 * time.Second
)

// liveLeaseRenew is how often a session renews its lease (a third of
// liveLeaseTTL); a variable so that a test can make it short.
var liveLeaseRenew = 5 * time.Second

// LiveSessionOptions is the body of POST /api/jetdrive/session. Exactly one
// of Target, TargetAFR, FuelDefault and TargetFromStream chooses the AFR
// target.
type LiveSessionOptions struct {
	Target           *LiveTargetTable `json:"target,omitempty"`
	TargetAFR        float64          `json:"target_afr,omitempty"`
	FuelDefault      string           `json:"fuel_default,omitempty"`
	TargetFromStream bool             `json:"target_from_stream,omitempty"`
	// Grid is the analysis grid; default the target table's axes, else the
	// analyzer's default grid grown to the data.
	Grid *LiveGrid `json:"grid,omitempty"`
	// Accumulate is what the session's snapshot accumulates: "pulls" (the
	// default: the samples of every recorded pull) or "all" (every sample
	// of the stream, for steady-state holds on a load-controlled dyno).
	Accumulate string `json:"accumulate,omitempty"`
	// Analysis holds analysis options as the upload form names them
	// (clamp_percent, min_samples, smooth_passes, weighting, fuel,
	// sensor_delay_ms...), for the session and every recorded pull.
	Analysis map[string]string `json:"analysis,omitempty"`
	Vehicle  string            `json:"vehicle,omitempty"`
	Pull     LivePullOptions   `json:"pull"`
}

// LiveTargetTable is a target AFR table: AFR[i][j] at RPM[i], MAP[j].
type LiveTargetTable struct {
	RPM []float64   `json:"rpm"`
	MAP []float64   `json:"map_kpa"`
	AFR [][]float64 `json:"afr"`
}

// LiveGrid is an analysis grid's axes.
type LiveGrid struct {
	RPM []float64 `json:"rpm"`
	MAP []float64 `json:"map_kpa"`
}

// LivePullOptions tune pull detection; zero values are the defaults (see
// the package's live session notes).
type LivePullOptions struct {
	WOTThrottle  float64 `json:"wot_throttle_pct,omitempty"`
	WOTMAP       float64 `json:"wot_map_kpa,omitempty"`
	MinDurationS float64 `json:"min_duration_s,omitempty"`
	MinRPMSpan   float64 `json:"min_rpm_span,omitempty"`
	RedlineRPM   float64 `json:"redline_rpm,omitempty"`
}

// constTarget is one target AFR everywhere.
type constTarget float64

func (c constTarget) At(float64, float64) float64 { return float64(c) }
func (c constTarget) String() string              { return fmt.Sprintf("%.2f AFR everywhere", float64(c)) }

// liveSetup is a validated LiveSessionOptions.
type liveSetup struct {
	opts     LiveSessionOptions
	analysis AnalysisOptions
	target   dyno.Surface // nil: the stream's commanded AFR
	text     string
	grid     ve.Grid
	pull     dyno.PullOptions
	all      bool
}

func parseLiveOptions(o LiveSessionOptions) (*liveSetup, error) {
	st := &liveSetup{opts: o}
	n := 0
	if o.Target != nil {
		n++
	}
	if o.TargetAFR != 0 {
		n++
	}
	if o.FuelDefault != "" {
		n++
	}
	if o.TargetFromStream {
		n++
	}
	if n != 1 {
		return nil, invalid("target", "choose exactly one AFR target: target (a table), target_afr, fuel_default (a fuel's default table, by name) or target_from_stream (the ECU's commanded AFR on the bus); JetDrive rarely carries one, so none is assumed")
	}
	form := o.Analysis
	if form == nil {
		form = map[string]string{}
	}
	a, err := ParseAnalysisOptions(form)
	if err != nil {
		var oe *OptionError
		if errors.As(err, &oe) {
			return nil, invalid("analysis."+oe.Field, err.Error())
		}
		return nil, err
	}
	if o.Vehicle != "" {
		if _, err := ParseAnalysisOptions(map[string]string{"vehicle": o.Vehicle}); err != nil {
			return nil, invalid("vehicle", err.Error())
		}
		a.Vehicle = o.Vehicle
	}
	st.analysis = a
	switch {
	case o.Target != nil:
		t, err := afr.NewTargets(o.Target.RPM, o.Target.MAP, o.Target.AFR, afr.TargetOptions{})
		if err != nil {
			return nil, invalid("target", err.Error())
		}
		st.target, st.text = t, "the session's target table"
		st.grid = ve.Grid{RPM: t.RPM(), MAP: t.MAP()}
	case o.TargetAFR != 0:
		if !(o.TargetAFR >= 6 && o.TargetAFR <= 20) {
			return nil, invalid("target_afr", fmt.Sprintf("%v is not a target AFR (want 6..20)", o.TargetAFR))
		}
		st.target, st.text = constTarget(o.TargetAFR), constTarget(o.TargetAFR).String()
	case o.FuelDefault != "":
		f, err := afr.FuelByName(strings.ToLower(o.FuelDefault))
		if err != nil {
			return nil, invalid("fuel_default", err.Error())
		}
		st.target, st.text = afr.DefaultTargetsFor(f), "the default target table for "+f.Name
	default:
		st.text = "the stream's commanded AFR"
	}
	if o.Grid != nil {
		g := ve.Grid{RPM: o.Grid.RPM, MAP: o.Grid.MAP}
		if _, err := ve.NewTable(g.RPM, g.MAP, 1); err != nil {
			return nil, invalid("grid", err.Error())
		}
		st.grid = g
	}
	switch o.Accumulate {
	case "", "pulls":
	case "all":
		st.all = true
	default:
		return nil, invalid("accumulate", fmt.Sprintf("%q: want pulls or all", o.Accumulate))
	}
	p := o.Pull
	for name, v := range map[string]float64{"pull.wot_throttle_pct": p.WOTThrottle, "pull.wot_map_kpa": p.WOTMAP,
		"pull.min_duration_s": p.MinDurationS, "pull.min_rpm_span": p.MinRPMSpan, "pull.redline_rpm": p.RedlineRPM} {
		if math.IsNaN(v) || v < 0 || v > 30000 {
			return nil, invalid(name, fmt.Sprintf("%v is out of range", v))
		}
	}
	if p.WOTThrottle > 100 {
		return nil, invalid("pull.wot_throttle_pct", "at most 100")
	}
	st.pull = dyno.PullOptions{WOTThrottle: p.WOTThrottle, WOTMAP: p.WOTMAP, MinRPMSpan: p.MinRPMSpan, Redline: p.RedlineRPM,
		MinDuration: time.Duration(p.MinDurationS * float64(time.Second))}
	return st, nil
}

// livePull is one recorded pull.
type livePull struct {
	Number     int      `json:"number"`
	RunID      string   `json:"run_id,omitempty"`
	StartS     float64  `json:"start_s"`
	EndS       float64  `json:"end_s"`
	MinRPM     float64  `json:"min_rpm"`
	MaxRPM     float64  `json:"max_rpm"`
	PeakHP     *float64 `json:"peak_hp"`
	PeakTorque *float64 `json:"peak_torque"`
	Samples    int      `json:"samples"`
	Error      string   `json:"error,omitempty"`
}

// liveSession is a session in progress (or stopped, until the next one
// starts).
type liveSession struct {
	srv     *Server
	id      string
	setup   *liveSetup
	tenant  string
	holder  string
	started time.Time
	layout  dyno.Layout // of the recorded samples

	in       chan dyno.Sample
	closing  chan struct{}
	done     chan struct{}
	received atomic.Int64
	dropped  atomic.Int64

	// owned by the session's goroutine
	ana      *ve.Session
	det      *dyno.PullDetector
	buf      []dyno.Sample
	bufFirst int64 // stream index of buf[0]
	next     int64 // stream index of the next sample
	seen     int   // pulls handled
	added    int64 // stream index of the last sample given to ana (pulls mode)

	mu      sync.Mutex // guards what follows
	lease   runstore.NamedLease
	pulls   []livePull
	result  *ve.Result
	doc     *ve.Document
	seq     uint64
	wake    chan struct{}
	state   string // recording, stopped, lost
	errText string
	stopped time.Time
}

// liveRecorder holds the replica's session.
type liveRecorder struct {
	mu  sync.Mutex
	cur *liveSession
}

// feed hands a sample of the stream to the session, never blocking the
// hub: when the session falls liveQueue samples behind, samples are
// dropped and counted.
func (r *liveRecorder) feed(s *dyno.Sample) {
	r.mu.Lock()
	cur := r.cur
	r.mu.Unlock()
	if cur == nil {
		return
	}
	select {
	case <-cur.closing:
		return
	default:
	}
	cur.received.Add(1)
	select {
	case cur.in <- *s:
	default:
		cur.dropped.Add(1)
	}
}

func (s *Server) leaser() (runstore.Leaser, error) {
	l, ok := s.cfg.Runs.(runstore.Leaser)
	if !ok {
		return nil, notConfigured("a run store that can hold the recording lease (runstore.Leaser)")
	}
	return l, nil
}

func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// handleLiveStart starts a live session.
func (s *Server) handleLiveStart(w http.ResponseWriter, r *http.Request) error {
	if err := s.defaultTenantOnly(r, "JetDrive"); err != nil {
		return err
	}
	if s.live == nil {
		return notConfigured("JetDrive")
	}
	if herr := s.accepting(); herr != nil {
		return herr
	}
	var o LiveSessionOptions
	if err := decodeJSON(r, &o); err != nil {
		return err
	}
	setup, err := parseLiveOptions(o)
	if err != nil {
		return err
	}
	ls, err := s.leaser()
	if err != nil {
		return err
	}
	rec := &s.live.rec
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.cur != nil && rec.cur.running() {
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: "a live session is already recording on this server; stop it first",
			Details: map[string]any{"session_id": rec.cur.id}}
	}
	id := newSessionID()
	holder := s.cfg.Replica + "/" + id
	lease, err := ls.AcquireLease(r.Context(), liveLeaseName, holder, liveLeaseTTL)
	if errors.Is(err, runstore.ErrLeaseHeld) {
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: "another replica is recording JetDrive: one records at a time",
			Details: map[string]any{"holder": lease.Holder, "until": lease.Until.UTC()}}
	}
	if err != nil {
		return err
	}
	sess, err := s.newLiveSession(id, holder, s.viewerOf(r).owner, setup, lease)
	if err != nil {
		_ = ls.ReleaseLease(context.WithoutCancel(r.Context()), lease)
		return err
	}
	rec.cur = sess
	go sess.run(s.workCtx, ls)
	s.log.Info("live session started", "session_id", id, "holder", holder, "target", setup.text)
	w.Header().Set("Location", s.link("/api/jetdrive/session"))
	writeJSON(w, http.StatusCreated, sess.view())
	return nil
}

func (s *Server) newLiveSession(id, holder, tenant string, setup *liveSetup, lease runstore.NamedLease) (*liveSession, error) {
	layout := s.cfg.JetDrive.Layout()
	layout.Name, layout.Format = "jetdrive session "+id, "jetdrive"
	if layout.Channels != 0 {
		layout.Channels = layout.Channels.With(dyno.ChanTime)
		if setup.target != nil {
			layout.Channels = layout.Channels.With(dyno.ChanAFRCommanded)
		}
	}
	vopts, err := setup.analysis.VE()
	if err != nil {
		return nil, invalid("analysis", err.Error())
	}
	vopts.Grid = setup.grid
	vopts.LearnDelayOptions.Prefix = liveLearnPrefix
	ana, err := ve.NewSession(vopts, layout)
	if err != nil {
		var re *ve.RefusalError
		if errors.As(err, &re) {
			return nil, &Error{Status: http.StatusBadRequest, Code: CodeValidation, Message: "the JetDrive stream cannot be analyzed: " + err.Error(), Err: err}
		}
		return nil, invalid("analysis", err.Error())
	}
	return &liveSession{srv: s, id: id, setup: setup, tenant: tenant, holder: holder, started: s.cfg.Now().UTC(), layout: layout,
		in: make(chan dyno.Sample, liveQueue), closing: make(chan struct{}), done: make(chan struct{}),
		ana: ana, det: dyno.NewPullDetector(layout, setup.pull), added: -1, lease: lease, wake: make(chan struct{}), state: "recording"}, nil
}

func (ls *liveSession) running() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.state == "recording"
}

// run is the session's goroutine: samples in, pulls recorded, snapshots
// taken, the lease renewed, until stopped, the lease lost or the server
// shutting down.
func (ls *liveSession) run(ctx context.Context, leaser runstore.Leaser) {
	defer close(ls.done)
	snap := time.NewTicker(liveSnapshotEvery)
	defer snap.Stop()
	renew := time.NewTicker(liveLeaseRenew)
	defer renew.Stop()
	dirty := false
	lastAnalyzed := 0
	reason := ""
	for reason == "" {
		select {
		case smp := <-ls.in:
			if ls.take(ctx, &smp) {
				dirty = true
			}
			continue
		default:
		}
		select {
		case smp := <-ls.in:
			if ls.take(ctx, &smp) {
				dirty = true
			}
		case <-snap.C:
			// New samples, or the analysis took in more of those it had
			// (its pipeline holds a window back): a new snapshot.
			if _, analyzed := ls.ana.Samples(); dirty || analyzed != lastAnalyzed {
				ls.publish(false)
				dirty, lastAnalyzed = false, analyzed
			}
		case <-renew.C:
			ls.mu.Lock()
			l := ls.lease
			ls.mu.Unlock()
			rctx, cancel := context.WithTimeout(ctx, liveLeaseRenew)
			nl, err := leaser.RenewLease(rctx, l, liveLeaseTTL)
			cancel()
			switch {
			case err == nil:
				ls.mu.Lock()
				ls.lease = nl
				ls.mu.Unlock()
			case errors.Is(err, runstore.ErrLeaseLost):
				reason = "lost"
			case ls.srv.cfg.Now().After(l.Until):
				reason = "lost"
			default:
				ls.srv.log.Warn("renewing the JetDrive recording lease failed; retrying", "session_id", ls.id, "err", err)
			}
		case <-ls.closing:
			reason = "stopped"
		case <-ctx.Done():
			reason = "stopped"
		}
	}
	// Drain what arrived before the stop, end a pull in progress, and take
	// the final snapshot.
	for {
		select {
		case smp := <-ls.in:
			ls.take(ctx, &smp)
			continue
		default:
		}
		break
	}
	ls.det.Flush()
	ls.pullsDone(context.WithoutCancel(ctx))
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	if err := ls.ana.Close(cctx); err != nil {
		ls.setError(err.Error())
	}
	cancel()
	ls.mu.Lock()
	ls.state, ls.stopped = reason, ls.srv.cfg.Now().UTC()
	l := ls.lease
	ls.mu.Unlock()
	if reason == "lost" {
		ls.setError("the recording lease was lost (another replica may record now); the session stopped")
		ls.srv.log.Warn("live session stopped: lease lost", "session_id", ls.id)
	} else {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := leaser.ReleaseLease(rctx, l); err != nil {
			ls.srv.log.Warn("releasing the JetDrive recording lease failed; it will expire", "err", err)
		}
		rcancel()
	}
	ls.publish(true)
	ls.srv.log.Info("live session ended", "session_id", ls.id, "state", reason, "pulls", len(ls.pullsView()))
}

// take handles one sample; it reports whether the session's analysis took
// it.
func (ls *liveSession) take(ctx context.Context, smp *dyno.Sample) bool {
	if ls.setup.target != nil {
		t := ls.setup.target.At(smp.RPM, smp.MAP)
		for c := 0; c < dyno.MaxCylinders; c++ {
			if dyno.Has(smp.AFR[c]) || dyno.Has(smp.Lambda[c]) {
				smp.AFRCommanded[c] = t
			}
		}
	}
	ls.next++
	ls.buf = append(ls.buf, *smp)
	ls.det.Add(smp)
	took := false
	if ls.setup.all {
		took = ls.ana.Add(ctx, smp) == nil
	}
	if n := ls.pullsDone(ctx); n > 0 && !ls.setup.all {
		took = true
	}
	// Keep the buffer bounded: a pull in progress needs at most
	// liveMaxPullSamples, the pre-roll a few more.
	if len(ls.buf) > 2*liveMaxPullSamples {
		drop := len(ls.buf) - liveMaxPullSamples
		ls.buf = append(ls.buf[:0], ls.buf[drop:]...)
		ls.bufFirst += int64(drop)
	}
	return took
}

// pullsDone records the pulls the detector completed since the last call
// and returns how many.
func (ls *liveSession) pullsDone(ctx context.Context) int {
	pulls := ls.det.Pulls()
	n := 0
	for ; ls.seen < len(pulls); ls.seen++ {
		p := pulls[ls.seen]
		n++
		// The pre-roll: back from the trimmed start by livePreRoll, within
		// what the buffer holds (a pull longer than it loses its start).
		first := max(p.FirstIndex, ls.bufFirst)
		start := ls.buf[first-ls.bufFirst].Time
		for first > ls.bufFirst && ls.buf[first-1-ls.bufFirst].Time > start-livePreRoll {
			first--
		}
		last := ls.next - 1 // the sample that ended it
		if last-first+1 > liveMaxPullSamples {
			last = first + liveMaxPullSamples - 1
		}
		samples := ls.buf[first-ls.bufFirst : last-ls.bufFirst+1]
		lp := livePull{Number: p.Number, StartS: p.Start.Seconds(), EndS: p.End.Seconds(), MinRPM: p.MinRPM, MaxRPM: p.MaxRPM,
			PeakHP: num(p.Peaks.Power), PeakTorque: num(p.Peaks.Torque), Samples: len(samples)}
		if !ls.setup.all {
			for i := range samples {
				if first+int64(i) <= ls.added {
					continue // in the previous pull's recording already
				}
				ls.added = first + int64(i)
				if err := ls.ana.Add(ctx, &samples[i]); err != nil {
					lp.Error = "the session's analysis stopped: " + err.Error()
					break
				}
			}
		}
		runID, err := ls.record(ctx, p, samples)
		if err != nil {
			ls.srv.log.Error("recording a JetDrive pull failed", "session_id", ls.id, "pull", p.Number, "err", err)
			lp.Error = "the pull could not be recorded: " + err.Error()
		}
		lp.RunID = runID
		ls.mu.Lock()
		ls.pulls = append(ls.pulls, lp)
		ls.mu.Unlock()
		// Only the last pre-roll is needed now: the next pull starts
		// after this one ended.
		if drop := len(ls.buf) - livePreRollSamples(ls.buf); drop > 0 {
			ls.buf = append(ls.buf[:0], ls.buf[drop:]...)
			ls.bufFirst += int64(drop)
		}
	}
	return n
}

// livePreRollSamples is how many trailing samples of buf to keep: enough
// for a pre-roll (a pull may start right after another ends).
func livePreRollSamples(buf []dyno.Sample) int {
	if len(buf) < 2 {
		return len(buf)
	}
	end := buf[len(buf)-1].Time
	k := 0
	for k < len(buf) && end-buf[len(buf)-1-k].Time <= livePreRoll {
		k++
	}
	return k
}

// record stores a pull's samples as a canonical CSV log and submits its run
// to the queue, as an upload is.
func (ls *liveSession) record(ctx context.Context, p dyno.PullSegment, samples []dyno.Sample) (string, error) {
	s := ls.srv
	var b bytes.Buffer
	cw := dynolog.NewCSVWriter(&b, ls.layout)
	for i := range samples {
		if err := cw.WriteSample(&samples[i]); err != nil {
			return "", err
		}
	}
	if err := cw.Flush(); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	blob, err := s.cfg.Files.Put(ctx, &b)
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("jetdrive_%s_%s_pull%02d.csv", ls.started.Format("20060102-150405"), ls.id[:6], p.Number)
	settings, _ := json.Marshal(ls.setup.analysis)
	sub, err := s.cfg.Runs.Submit(ctx, runstore.NewRun{Tenant: ls.tenant, Source: runstore.SourceJetDrive, Filename: name,
		InputSize: blob.Size, Vehicle: ls.setup.analysis.Vehicle, Settings: settings},
		runstore.NewJob{MaxAttempts: s.cfg.JobMaxAttempts, Input: runstore.FileMeta{Name: name, ContentType: "text/csv",
			Size: blob.Size, SHA256: blob.SHA256, StorageKey: blob.Key}})
	if err != nil {
		return "", err
	}
	s.wake()
	return sub.Run.ID, nil
}

// publish takes a snapshot of the session's analysis and wakes streams.
func (ls *liveSession) publish(final bool) {
	res, err := ls.ana.Snapshot()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if err != nil {
		ls.errText = "the session's analysis failed: " + err.Error()
	} else {
		doc := res.Document()
		ls.result, ls.doc = res, &doc
	}
	ls.seq++
	close(ls.wake)
	ls.wake = make(chan struct{})
}

func (ls *liveSession) setError(msg string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.errText = msg
}

func (ls *liveSession) pullsView() []livePull {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return append([]livePull{}, ls.pulls...)
}

// liveView is a session in JSON.
type liveView struct {
	SessionID  string       `json:"session_id"`
	State      string       `json:"state"` // recording, stopped, lost
	Holder     string       `json:"holder"`
	StartedAt  time.Time    `json:"started_at"`
	StoppedAt  *time.Time   `json:"stopped_at"`
	Target     string       `json:"target"`
	Accumulate string       `json:"accumulate"`
	Seq        uint64       `json:"seq"`
	Samples    liveCounts   `json:"samples"`
	Pulls      []livePull   `json:"pulls"`
	Error      string       `json:"error,omitempty"`
	Result     *ve.Document `json:"result"` // the snapshot; null before the first
}

type liveCounts struct {
	Received int64 `json:"received"`
	Dropped  int64 `json:"dropped"`
	Analyzed int64 `json:"analyzed"`
}

func (ls *liveSession) view() liveView {
	_, analyzed := ls.ana.Samples()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	acc := "pulls"
	if ls.setup.all {
		acc = "all"
	}
	v := liveView{SessionID: ls.id, State: ls.state, Holder: ls.holder, StartedAt: ls.started, Target: ls.setup.text,
		Accumulate: acc, Seq: ls.seq, Pulls: append([]livePull{}, ls.pulls...), Error: ls.errText, Result: ls.doc,
		Samples: liveCounts{Received: ls.received.Load(), Dropped: ls.dropped.Load(), Analyzed: int64(analyzed)}}
	if !ls.stopped.IsZero() {
		t := ls.stopped
		v.StoppedAt = &t
	}
	return v
}

// session returns the replica's session or the error a route answers
// without one: 409 naming the holder when another replica records, 404
// otherwise.
func (s *Server) session(r *http.Request) (*liveSession, error) {
	if err := s.defaultTenantOnly(r, "JetDrive"); err != nil {
		return nil, err
	}
	if s.live == nil {
		return nil, notConfigured("JetDrive")
	}
	s.live.rec.mu.Lock()
	cur := s.live.rec.cur
	s.live.rec.mu.Unlock()
	if cur != nil {
		return cur, nil
	}
	if ls, ok := s.cfg.Runs.(runstore.Leaser); ok {
		if l, err := ls.CurrentLease(r.Context(), liveLeaseName); err == nil && l.Held(s.cfg.Now()) {
			return nil, &Error{Status: http.StatusConflict, Code: CodeConflict,
				Message: "the live session is recorded by another replica; ask it", Details: map[string]any{"holder": l.Holder}}
		}
	}
	return nil, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no live session was started on this server; POST /api/jetdrive/session starts one"}
}

func (s *Server) handleLiveGet(w http.ResponseWriter, r *http.Request) error {
	ls, err := s.session(r)
	var he *Error
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		// No session is not an error for a page that asks whether there
		// is one (a 404 would be a console error in every browser).
		writeJSON(w, http.StatusOK, map[string]any{"state": "none", "message": he.Message})
		return nil
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ls.view())
	return nil
}

func (s *Server) handleLiveStop(w http.ResponseWriter, r *http.Request) error {
	ls, err := s.session(r)
	if err != nil {
		return err
	}
	s.live.rec.mu.Lock()
	select {
	case <-ls.closing:
	default:
		close(ls.closing)
	}
	s.live.rec.mu.Unlock()
	select {
	case <-ls.done:
	case <-r.Context().Done():
		return r.Context().Err()
	}
	writeJSON(w, http.StatusOK, ls.view())
	return nil
}

// handleLiveSave stores the session's current snapshot as a completed run
// (source jetdrive) with the result files of any analysis, so it is
// applied, downloaded and rolled back like any run.
func (s *Server) handleLiveSave(w http.ResponseWriter, r *http.Request) error {
	ls, err := s.session(r)
	if err != nil {
		return err
	}
	ls.mu.Lock()
	res := ls.result
	ls.mu.Unlock()
	if res == nil || res.Corrected() == 0 {
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: "the session has no corrections yet: record a pull first"}
	}
	ctx := r.Context()
	run, err := s.cfg.Runs.Create(ctx, runstore.NewRun{Tenant: ls.tenant, Source: runstore.SourceJetDrive,
		Filename: fmt.Sprintf("jetdrive_session_%s.csv", ls.id), Vehicle: ls.setup.analysis.Vehicle})
	if err != nil {
		return err
	}
	run, err = s.cfg.Runs.Update(ctx, run.ID, runstore.Update{Version: run.Version, Status: runstore.StatusProcessing})
	if err != nil {
		return err
	}
	if err := s.saveResult(ctx, run, res); err != nil {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if cur, gerr := s.cfg.Runs.Get(fctx, run.ID); gerr == nil {
			_, _ = s.cfg.Runs.Fail(fctx, run.ID, cur.Version, runstore.RunError{Stage: "storage", Code: "STORE_ERROR",
				Message: "the session's snapshot could not be stored", Detail: err.Error()})
		}
		return err
	}
	done, err := s.cfg.Runs.Get(ctx, run.ID)
	if err != nil {
		return err
	}
	w.Header().Set("Location", s.link("/api/runs/"+run.ID))
	writeJSON(w, http.StatusCreated, map[string]any{"run_id": run.ID, "status": done.Status, "session_id": ls.id,
		"links": map[string]string{"run": s.link("/api/runs/" + run.ID), "apply": s.link("/api/runs/" + run.ID + "/apply")}})
	return nil
}

// saveResult writes res's files and completes run with it.
func (s *Server) saveResult(ctx context.Context, run runstore.Run, res *ve.Result) error {
	dir, err := os.MkdirTemp("", "dynoai-live-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	names, err := res.WriteFiles(dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		m, err := s.putFile(ctx, name, filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if _, err := s.cfg.Runs.AddFile(ctx, run.ID, m); err != nil {
			return err
		}
	}
	doc, err := json.Marshal(res.Document())
	if err != nil {
		return err
	}
	var cells int64
	maxPct := 0.0
	for i := range res.Cylinders {
		for _, v := range res.Cylinders[i].Correction.Values {
			if ve.Has(v) && v != 1 {
				cells++
				maxPct = math.Max(maxPct, math.Abs(v-1)*100)
			}
		}
	}
	_, err = s.cfg.Runs.Complete(ctx, run.ID, run.Version, runstore.Result{Results: doc,
		Stats:   runstore.Stats{CorrectedCells: &cells, MaxCorrectionPct: &maxPct},
		Message: fmt.Sprintf("the live session's snapshot of %d samples", res.Samples)})
	return err
}

// handleLiveStream streams the session over Server-Sent Events: a
// "snapshot" event (the GET body) at once and whenever the snapshot
// changes (at most every liveSnapshotEvery), and "end" when the session
// stops.
func (s *Server) handleLiveStream(w http.ResponseWriter, r *http.Request) error {
	ls, err := s.session(r)
	if err != nil {
		return err
	}
	release, rc, err := s.sse(w)
	if err != nil {
		return err
	}
	defer release()
	ctx := r.Context()
	keep := time.NewTicker(sseKeepAlive)
	defer keep.Stop()
	var sent uint64
	first := true
	for {
		ls.mu.Lock()
		seq, wake := ls.seq, ls.wake
		ls.mu.Unlock()
		if first || seq != sent {
			v := ls.view()
			if writeEvent(w, "snapshot", v) != nil || rc.Flush() != nil {
				return nil
			}
			sent, first = v.Seq, false
			if v.State != "recording" {
				_ = writeEvent(w, "end", map[string]string{"state": v.State})
				_ = rc.Flush()
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.streamCtx.Done():
			return nil
		case <-keep.C:
			if _, err := io.WriteString(w, ": keepalive\n\n"); err != nil || rc.Flush() != nil {
				return nil
			}
		case <-wake:
		}
	}
}
