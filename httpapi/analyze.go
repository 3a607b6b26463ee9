package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dynoai/dynoai/dyno"
	"github.com/dynoai/dynoai/dyno/dynolog"
	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/ve"
)

// Upload limits besides MaxUploadBytes.
const (
	maxFormFields    = 32
	maxFormValue     = 1024
	sniffBytes       = 8 << 10
	maxFilenameBytes = 255
)

// allowedExt are the log extensions an upload may have.
var allowedExt = map[string]bool{".csv": true, ".txt": true}

// uploadName reduces a client's file name to its base name and checks it:
// no path ever reaches a filesystem (contents go to the FileStore under its
// own keys), but the name is shown back, so it must be sane.
func uploadName(name string) (string, *Error) {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(name)
	switch {
	case name == "" || name == "." || name == "..":
		return "", badRequest("No file selected")
	case !utf8.ValidString(name) || len(name) > maxFilenameBytes || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", invalid("file", "file name must be at most 255 bytes of printable UTF-8")
	}
	ext := strings.ToLower(filepath.Ext(name))
	if !allowedExt[ext] {
		return "", &Error{Status: http.StatusBadRequest, Code: CodeFileType,
			Message: "Invalid file type. Only CSV and TXT files allowed",
			Details: map[string]any{"allowed_types": []string{"csv", "txt"}}}
	}
	return name, nil
}

// accepting explains, without taking anything, why no analysis can be
// accepted now (starting or shutting down); nil when they can.
func (s *Server) accepting() *Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started || s.draining {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: "the server is not accepting analyses (starting or shutting down)",
			Details: map[string]any{"retry_after_seconds": 5}}
	}
	return nil
}

// handleAnalyze stores an uploaded log and queues its analysis. The upload
// is read (at a minimum rate, see uploadBody), stored and checked before an
// analysis slot is taken: a slow or broken upload never holds a slot.
func (s *Server) handleAnalyze(w http.ResponseWriter, r *http.Request) error {
	if herr := s.accepting(); herr != nil {
		return herr
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "multipart/form-data" {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia,
			Message: "send multipart/form-data with the log in a field named file"}
	}
	body := s.newUploadBody(w, r)
	r.Body = body
	mr, err := r.MultipartReader()
	if err != nil {
		return badRequest("malformed multipart body: " + err.Error())
	}
	form := map[string]string{}
	var (
		blob     runstore.Blob
		storedAt time.Time
		haveFile bool
		filename string
	)
	for n := 0; ; n++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if uerr := uploadError(err, body); uerr != err || isMultipartEOF(err) {
				return uerr
			}
			return badRequest("malformed multipart body: " + err.Error())
		}
		if n >= maxFormFields {
			return badRequest(fmt.Sprintf("too many form parts (at most %d)", maxFormFields))
		}
		field := part.FormName()
		if field == "file" {
			if haveFile {
				return badRequest("more than one file part")
			}
			name, herr := uploadName(part.FileName())
			if herr != nil {
				return herr
			}
			b, err := s.storeUpload(r.Context(), part)
			if err != nil {
				return uploadError(err, body)
			}
			blob, storedAt, haveFile, filename = b, time.Now(), true, name
			continue
		}
		if field == "" {
			return badRequest("form part without a name")
		}
		v, err := io.ReadAll(io.LimitReader(part, maxFormValue+1))
		if err != nil {
			return uploadError(err, body)
		}
		if len(v) > maxFormValue {
			return invalid(field, fmt.Sprintf("field %q is longer than %d bytes", field, maxFormValue))
		}
		if _, dup := form[field]; dup {
			return invalid(field, fmt.Sprintf("field %q given twice", field))
		}
		form[field] = string(v)
	}
	if !haveFile {
		return badRequest("No file provided")
	}
	opts, err := ParseAnalysisOptions(form)
	if err != nil {
		var oe *OptionError
		if errors.As(err, &oe) {
			return invalid(oe.Field, err.Error())
		}
		return err
	}
	if err := s.checkLog(r.Context(), blob, filename, opts); err != nil {
		return err
	}
	// Only now, with the log stored and readable, queue its analysis.
	if err := s.checkBacklog(r.Context()); err != nil {
		return err
	}
	if since := time.Since(storedAt); since > runstore.MinUnreferencedAge/2 {
		return &Error{Status: http.StatusRequestTimeout, Code: CodeTimeout,
			Message: fmt.Sprintf("the upload took %v; its contents may be swept before they are recorded, send it again faster", since.Round(time.Second))}
	}
	settings, _ := json.Marshal(opts)
	sub, err := s.cfg.Runs.Submit(r.Context(), runstore.NewRun{Tenant: s.viewerOf(r).owner, Source: runstore.SourceUpload, Filename: filename,
		InputSize: blob.Size, Vehicle: opts.Vehicle, Settings: settings},
		runstore.NewJob{MaxAttempts: s.cfg.JobMaxAttempts, Input: runstore.FileMeta{Name: filename, ContentType: "text/csv",
			Size: blob.Size, SHA256: blob.SHA256, StorageKey: blob.Key}})
	if err != nil {
		return err
	}
	s.cfg.Metrics.ObserveUpload(blob.Size)
	s.wake()
	run := sub.Run
	w.Header().Set("Location", s.link("/api/runs/"+run.ID))
	// runId is the predecessor's name for run_id: this route mirrors its
	// POST /api/analyze, whose clients read runId.
	writeJSON(w, http.StatusAccepted, map[string]any{
		"runId": run.ID, "run_id": run.ID, "status": "queued", "message": "Analysis started",
		"links": map[string]string{"run": s.link("/api/runs/" + run.ID), "status": s.link("/api/status/" + run.ID)},
	})
	return nil
}

// checkBacklog refuses an upload, with 503 and Retry-After, while Queue
// or more analyses wait for a worker in the whole cluster (every replica
// sharing the run store).
func (s *Server) checkBacklog(ctx context.Context) error {
	c, err := s.cfg.Runs.JobCounts(ctx)
	if err != nil {
		return err
	}
	s.backlog.Store(c.Backlog())
	s.cfg.Metrics.SetJobBacklog(c.Backlog())
	if c.Backlog() >= int64(s.cfg.Queue) {
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable,
			Message: "too many analyses in progress; try again shortly",
			Details: map[string]any{"retry_after_seconds": 5, "waiting": c.Backlog()}}
	}
	return nil
}

// storeUpload streams a file part into the FileStore after checking that
// its first bytes look like a text log.
func (s *Server) storeUpload(ctx context.Context, part io.Reader) (runstore.Blob, error) {
	br := bufio.NewReaderSize(part, sniffBytes)
	head, err := br.Peek(sniffBytes)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return runstore.Blob{}, err
	}
	if len(bytes.TrimSpace(head)) == 0 {
		return runstore.Blob{}, invalid("file", "the file is empty")
	}
	if i := bytes.IndexByte(head, 0); i >= 0 {
		return runstore.Blob{}, invalid("file", fmt.Sprintf("the file is binary, not a text log (NUL byte at offset %d)", i))
	}
	b, err := s.cfg.Files.Put(ctx, br)
	if err != nil {
		return runstore.Blob{}, err
	}
	return b, nil
}

// checkLog opens the stored upload as a dyno log and reads its first row,
// so a file no analysis could read is refused with 400 before a run exists.
func (s *Server) checkLog(ctx context.Context, blob runstore.Blob, name string, opts AnalysisOptions) error {
	rc, err := s.cfg.Files.Open(ctx, blob.Key)
	if err != nil {
		return err
	}
	defer rc.Close()
	rd, err := dynolog.NewReader(rc, name, dynolog.ReadOptions{MaxBadRows: opts.MaxBadRows})
	if err != nil {
		return logError(err)
	}
	defer rd.Close()
	smp := dyno.NewSample()
	if err := rd.Next(ctx, &smp); err != nil {
		if errors.Is(err, io.EOF) {
			return &Error{Status: http.StatusBadRequest, Code: CodeCSVParsing, Message: name + ": the log has no data rows"}
		}
		return logError(err)
	}
	return nil
}

// logError maps a log reader's error to 400 with its message (which names
// the file, line, column and byte offset), anything else to 500.
func logError(err error) error {
	var pe *dynolog.ParseError
	if errors.As(err, &pe) || errors.Is(err, dynolog.ErrMissingColumns) || errors.Is(err, ve.ErrMissingChannel) {
		d := map[string]any{}
		if pe != nil {
			d["line"], d["column"], d["offset"] = pe.Line, pe.Column, pe.Offset
		}
		return &Error{Status: http.StatusBadRequest, Code: CodeCSVParsing, Message: err.Error(), Details: d, Err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	// Format detection and header problems that are not ParseErrors are
	// still the file's fault, and their messages name no server path.
	return &Error{Status: http.StatusBadRequest, Code: CodeCSVParsing, Message: err.Error(), Err: err}
}

func (s *Server) analyze(ctx context.Context, j *job, pr *progress) (*ve.Result, runstore.Stats, error) {
	vopts, err := j.opts.VE()
	if err != nil {
		return nil, runstore.Stats{}, err
	}
	a, err := s.cfg.NewAnalyzer(vopts)
	if err != nil {
		return nil, runstore.Stats{}, err
	}
	// The input is read through its checksum: a log corrupted at rest
	// fails the run (ErrChecksum) instead of being analyzed.
	_, rc, err := runstore.OpenFile(ctx, s.cfg.Runs, s.cfg.Files, j.lease.Run.ID, j.fileID)
	if err != nil {
		return nil, runstore.Stats{}, err
	}
	defer rc.Close()
	cr := &countReader{r: rc}
	pr.read = cr
	rd, err := dynolog.NewReader(cr, j.filename, dynolog.ReadOptions{MaxBadRows: j.opts.MaxBadRows})
	if err != nil {
		return nil, runstore.Stats{}, err
	}
	defer rd.Close()
	src := &summarySource{src: rd, pr: pr}
	res, err := a.Analyze(ctx, src)
	if err != nil {
		return nil, runstore.Stats{}, err
	}
	return res, src.stats(res), nil
}

// storeResult stores the result's files in the FileStore, then completes
// the job: the run's result and the files' records are written in one
// transaction that checks the lease, so they are written once, by the
// lease's holder, or not at all.
func (s *Server) storeResult(ctx context.Context, j *job, hb *heartbeat, res *ve.Result, stats runstore.Stats) error {
	hb.progress.set(ctx, "writing", 0.9, "storing the results", true)
	dir, err := os.MkdirTemp("", "dynoai-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	names, err := res.WriteFiles(dir)
	if err != nil {
		return err
	}
	first := time.Now()
	metas := make([]runstore.FileMeta, 0, len(names))
	for _, name := range names {
		m, err := s.putFile(ctx, name, filepath.Join(dir, name))
		if err != nil {
			return err
		}
		metas = append(metas, m)
	}
	if since := time.Since(first); since > runstore.MinUnreferencedAge/2 {
		return fmt.Errorf("%w: storing the results took %v", runstore.ErrUnavailable, since)
	}
	doc, err := json.Marshal(res.Document())
	if err != nil {
		return err
	}
	done, err := s.cfg.Runs.CompleteJob(ctx, hb.current(), runstore.Result{Results: doc, Stats: stats,
		Message: fmt.Sprintf("analyzed %d samples", res.Samples)}, metas)
	if err != nil {
		return err
	}
	hb.progress.setRun(done)
	return nil
}

// putFile stores a result file's contents and returns its record.
func (s *Server) putFile(ctx context.Context, name, path string) (runstore.FileMeta, error) {
	f, err := os.Open(path)
	if err != nil {
		return runstore.FileMeta{}, err
	}
	defer f.Close()
	b, err := s.cfg.Files.Put(ctx, f)
	if err != nil {
		return runstore.FileMeta{}, err
	}
	return runstore.FileMeta{Name: name, ContentType: contentType(name), Size: b.Size, SHA256: b.SHA256, StorageKey: b.Key}, nil
}

func contentType(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return "text/csv"
	case ".json":
		return "application/json"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
	m sync.Mutex
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.m.Lock()
	c.n += int64(n)
	c.m.Unlock()
	return n, err
}

func (c *countReader) count() int64 {
	c.m.Lock()
	defer c.m.Unlock()
	return c.n
}

// progress stores an analysis's progress in the run store, at most once a
// second and only when it moved by a percent or more.
type progress struct {
	s     *Server
	mu    sync.Mutex
	run   runstore.Run
	total int64
	read  *countReader
	last  time.Time
	frac  float64
}

func (p *progress) setRun(r runstore.Run) {
	p.mu.Lock()
	p.run = r
	p.mu.Unlock()
}

// tick is called per sample; it is cheap unless an update is due.
func (p *progress) tick(ctx context.Context) {
	if p.read == nil || p.total <= 0 {
		return
	}
	now := time.Now()
	if now.Sub(p.last) < time.Second {
		return
	}
	f := 0.9 * float64(p.read.count()) / float64(p.total)
	if f-p.frac < 0.01 {
		return
	}
	p.set(ctx, "analyzing", f, fmt.Sprintf("read %d of %d bytes", p.read.count(), p.total), false)
}

func (p *progress) set(ctx context.Context, stage string, frac float64, msg string, force bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = time.Now()
	frac = math.Min(math.Max(frac, 0), 1)
	p.frac = frac
	r, err := p.s.cfg.Runs.Update(ctx, p.run.ID, runstore.Update{Version: p.run.Version, Stage: &stage, Progress: &frac, Message: &msg})
	if err != nil {
		if force {
			p.s.log.Warn("progress update failed", "run_id", p.run.ID, "err", err)
		}
		return
	}
	p.run = r
}

// summarySource passes samples through, noting the peaks and the AFR
// statistics a run stores as columns, and ticking progress.
type summarySource struct {
	src      dyno.Source
	pr       *progress
	peakHP   float64
	peakTq   float64
	afrN     float64
	afrMean  float64
	afrM2    float64
	hasPower bool
	hasTq    bool
}

func (s *summarySource) Next(ctx context.Context, smp *dyno.Sample) error {
	if err := s.src.Next(ctx, smp); err != nil {
		return err
	}
	if dyno.Has(smp.Power) && (!s.hasPower || smp.Power > s.peakHP) {
		s.peakHP, s.hasPower = smp.Power, true
	}
	if dyno.Has(smp.Torque) && (!s.hasTq || smp.Torque > s.peakTq) {
		s.peakTq, s.hasTq = smp.Torque, true
	}
	for _, a := range smp.AFR {
		if dyno.Has(a) && a > 0 && !math.IsInf(a, 0) {
			s.afrN++
			d := a - s.afrMean
			s.afrMean += d / s.afrN
			s.afrM2 += d * (a - s.afrMean)
		}
	}
	s.pr.tick(ctx)
	return nil
}

// Layout passes the wrapped source's layout through when it has one.
func (s *summarySource) Layout() dyno.Layout {
	return s.src.Layout()
}

func (s *summarySource) stats(res *ve.Result) runstore.Stats {
	var st runstore.Stats
	if s.hasPower {
		st.PeakHP = ptr(s.peakHP)
	}
	if s.hasTq {
		st.PeakTorque = ptr(s.peakTq)
	}
	if s.afrN > 0 {
		st.AFRMean = ptr(s.afrMean)
		st.AFRStd = ptr(math.Sqrt(s.afrM2 / s.afrN))
	}
	var cells int64
	maxPct := 0.0
	for i := range res.Cylinders {
		c := res.Cylinders[i].Correction
		for _, v := range c.Values {
			if ve.Has(v) && v != 1 {
				cells++
				maxPct = math.Max(maxPct, math.Abs(v-1)*100)
			}
		}
	}
	st.CorrectedCells = &cells
	st.MaxCorrectionPct = &maxPct
	return st
}

func ptr[T any](v T) *T { return &v }
