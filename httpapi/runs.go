package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/ve"
)

// bufferVerifyLimit is the largest file a download reads and verifies
// whole before sending; larger files are streamed and the connection is cut
// if the checksum fails at the end.
const bufferVerifyLimit = 8 << 20

// runID returns the {id} path value if it has the form of a store id.
func runID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !runstore.ValidID(id) {
		return "", &Error{Status: http.StatusBadRequest, Code: CodeValidation, Message: "invalid run id",
			Details: map[string]any{"field": "id"}}
	}
	return id, nil
}

// storeError maps a store's errors to the envelope.
func storeError(err error, resource, id string) error {
	switch {
	case errors.Is(err, runstore.ErrNotFound):
		return notFound(resource, id)
	case errors.Is(err, runstore.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: resource + " changed concurrently; retry", Err: err}
	case errors.Is(err, runstore.ErrChecksum):
		return &Error{Status: http.StatusInternalServerError, Code: CodeChecksum, Message: "stored file failed its checksum", Err: err}
	case errors.Is(err, runstore.ErrInvalid):
		var ie *runstore.InvalidError
		if errors.As(err, &ie) {
			return invalid(ie.Field, ie.Error())
		}
		return badRequest(err.Error())
	}
	return err
}

// getRun returns the run named by the {id} path value, if the request may
// see it (see ownedRun).
func (s *Server) getRun(ctx context.Context, r *http.Request) (runstore.Run, error) {
	id, err := runID(r)
	if err != nil {
		return runstore.Run{}, err
	}
	return s.ownedRun(ctx, r, id)
}

// runView is a run as the API shows it: no internal error detail, results
// only when asked for.
type runView struct {
	ID          string             `json:"id"`
	Version     int64              `json:"version"`
	Status      runstore.Status    `json:"status"`
	Source      runstore.RunSource `json:"source"`
	Stage       string             `json:"stage,omitempty"`
	Progress    float64            `json:"progress"`
	Message     string             `json:"message,omitempty"`
	Filename    string             `json:"filename,omitempty"`
	InputSize   int64              `json:"input_size,omitempty"`
	Vehicle     string             `json:"vehicle,omitempty"`
	JetstreamID string             `json:"jetstream_id,omitempty"`
	Settings    json.RawMessage    `json:"settings,omitempty"`
	Results     json.RawMessage    `json:"results,omitempty"`
	Error       *runstore.RunError `json:"error,omitempty"`
	Stats       runstore.Stats     `json:"stats"`
	CreatedAt   time.Time          `json:"created_at"`
	UpdatedAt   time.Time          `json:"updated_at"`
	CompletedAt *time.Time         `json:"completed_at,omitempty"`
	Links       map[string]string  `json:"links"`
}

func (s *Server) viewRun(run runstore.Run, full bool) runView {
	v := runView{ID: run.ID, Version: run.Version, Status: run.Status,
		Source: run.Source, Stage: run.Stage, Progress: run.Progress, Message: run.Message, Filename: run.Filename,
		InputSize: run.InputSize, Vehicle: run.Vehicle, JetstreamID: run.JetstreamID, Settings: run.Settings,
		Stats: run.Stats, CreatedAt: run.CreatedAt, UpdatedAt: run.UpdatedAt,
		Links: map[string]string{"self": s.link("/api/runs/" + run.ID), "files": s.link("/api/runs/" + run.ID + "/files")}}
	if !run.CompletedAt.IsZero() {
		t := run.CompletedAt
		v.CompletedAt = &t
	}
	if run.Error != nil {
		e := *run.Error
		e.Detail = "" // internal
		v.Error = &e
	}
	if full {
		v.Results = run.Results
	}
	return v
}

// legacyStatus maps a status to the predecessor's /api/status vocabulary.
func legacyStatus(st runstore.Status) string {
	switch st {
	case runstore.StatusQueued:
		return "queued"
	case runstore.StatusProcessing:
		return "running"
	case runstore.StatusCompleted:
		return "completed"
	}
	return "error"
}

func (s *Server) handleListRuns(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "status", "source", "limit", "cursor", "q", "jetstream_id":
		default:
			return invalid(k, fmt.Sprintf("unknown query parameter %q", k))
		}
	}
	f := runstore.Filter{Cursor: q.Get("cursor"), Text: q.Get("q"), JetstreamID: q.Get("jetstream_id")}
	for _, v := range q["status"] {
		for _, p := range strings.Split(v, ",") {
			st, err := runstore.ParseStatus(p)
			if err != nil {
				return invalid("status", err.Error())
			}
			f.Statuses = append(f.Statuses, st)
		}
	}
	for _, v := range q["source"] {
		for _, p := range strings.Split(v, ",") {
			src, err := runstore.ParseSource(p)
			if err != nil {
				return invalid("source", err.Error())
			}
			f.Sources = append(f.Sources, src)
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > runstore.MaxLimit {
			return invalid("limit", fmt.Sprintf("limit must be an integer in 1..%d", runstore.MaxLimit))
		}
		f.Limit = n
	}
	page, err := s.cfg.Runs.List(r.Context(), s.viewerOf(r).filter(f))
	if err != nil {
		return storeError(err, "Runs", "")
	}
	out := make([]runView, len(page.Runs))
	for i, run := range page.Runs {
		out[i] = s.viewRun(run, false)
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": out, "next": page.Next})
	return nil
}

func (s *Server) handleGetRun(w http.ResponseWriter, r *http.Request) error {
	run, err := s.getRun(r.Context(), r)
	if err != nil {
		return err
	}
	hist, err := s.cfg.Runs.History(r.Context(), run.ID)
	if err != nil {
		return storeError(err, "Run", run.ID)
	}
	files, err := s.cfg.Runs.Files(r.Context(), run.ID)
	if err != nil {
		return storeError(err, "Run", run.ID)
	}
	writeJSON(w, http.StatusOK, map[string]any{"run": s.viewRun(run, true), "history": hist, "files": s.viewFiles(files)})
	return nil
}

// handleStatus is the predecessor's /api/status/{id} shape, read from the
// store: its camelCase runId and its status words (queued, running,
// completed, error). Native clients read /api/runs/{id}.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) error {
	run, err := s.getRun(r.Context(), r)
	if err != nil {
		return err
	}
	body := map[string]any{"runId": run.ID, "status": legacyStatus(run.Status),
		"progress": int(math.Round(run.Progress * 100)), "stage": run.Stage, "message": run.Message, "filename": run.Filename}
	if run.Error != nil {
		body["error"] = run.Error.Message
		body["error_code"] = run.Error.Code
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

func (s *Server) handleDeleteRun(w http.ResponseWriter, r *http.Request) error {
	run, err := s.getRun(r.Context(), r)
	if err != nil {
		return err
	}
	if !run.Status.Terminal() {
		return &Error{Status: http.StatusConflict, Code: CodeConflict,
			Message: "run is " + string(run.Status) + "; wait for it to finish before deleting it"}
	}
	unlock := s.runLocks.lock(run.ID)
	defer unlock()
	if err := runstore.DeleteRun(r.Context(), s.cfg.Runs, s.cfg.Files, run.ID); err != nil {
		if errors.Is(err, runstore.ErrNotFound) {
			return notFound("Run", run.ID)
		}
		s.log.Warn("run deleted, some file contents remain", "run_id", run.ID, "err", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// fileView is a file as the API shows it: no storage key.
type fileView struct {
	ID          int64     `json:"id"`
	RunID       string    `json:"run_id"`
	Name        string    `json:"name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	CreatedAt   time.Time `json:"created_at"`
	URL         string    `json:"url"`
}

func (s *Server) viewFiles(fs []runstore.File) []fileView {
	out := make([]fileView, len(fs))
	for i, f := range fs {
		out[i] = fileView{ID: f.ID, RunID: f.RunID, Name: f.Name, ContentType: f.ContentType, Size: f.Size,
			SHA256: f.SHA256, CreatedAt: f.CreatedAt, URL: s.link(fmt.Sprintf("/api/runs/%s/files/%d", f.RunID, f.ID))}
	}
	return out
}

func (s *Server) handleListFiles(w http.ResponseWriter, r *http.Request) error {
	run, err := s.getRun(r.Context(), r)
	if err != nil {
		return err
	}
	files, err := s.cfg.Runs.Files(r.Context(), run.ID)
	if err != nil {
		return storeError(err, "Run", run.ID)
	}
	writeJSON(w, http.StatusOK, map[string]any{"run_id": run.ID, "files": s.viewFiles(files)})
	return nil
}

func (s *Server) handleFile(w http.ResponseWriter, r *http.Request) error {
	run, err := s.getRun(r.Context(), r)
	if err != nil {
		return err
	}
	fid, err := strconv.ParseInt(r.PathValue("file"), 10, 64)
	if err != nil || fid < 1 {
		return invalid("file", "invalid file id")
	}
	f, err := s.cfg.Runs.File(r.Context(), run.ID, fid)
	if err != nil {
		return storeError(err, "File", r.PathValue("file"))
	}
	return s.sendFile(w, r, f)
}

// handleDownload is the predecessor's /api/download/{id}/{name}: the name
// is looked up among the run's stored files, never used as a path.
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) error {
	run, err := s.getRun(r.Context(), r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	files, err := s.cfg.Runs.Files(r.Context(), run.ID)
	if err != nil {
		return storeError(err, "Run", run.ID)
	}
	f, ok := latestNamed(files, name)
	if !ok {
		return notFound("File", name)
	}
	return s.sendFile(w, r, f)
}

// latestNamed returns the last attached file called name.
func latestNamed(files []runstore.File, name string) (runstore.File, bool) {
	for i := len(files) - 1; i >= 0; i-- {
		if files[i].Name == name {
			return files[i], true
		}
	}
	return runstore.File{}, false
}

// sendFile streams a stored file with its checksum verified.
func (s *Server) sendFile(w http.ResponseWriter, r *http.Request, f runstore.File) error {
	h := w.Header()
	set := func() {
		h.Set("Content-Type", f.ContentType)
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
		h.Set("ETag", `"`+f.SHA256+`"`)
		h.Set("X-Checksum-SHA256", f.SHA256)
		h.Set("Cache-Control", "private, no-cache")
		h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && match == `"`+f.SHA256+`"` {
		set()
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if f.Size <= bufferVerifyLimit {
		_, data, err := runstore.ReadFile(r.Context(), s.cfg.Runs, s.cfg.Files, f.RunID, f.ID)
		if err != nil {
			return storeError(err, "File", strconv.FormatInt(f.ID, 10))
		}
		set()
		h.Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(data)
		}
		return nil
	}
	_, rc, err := runstore.OpenFile(r.Context(), s.cfg.Runs, s.cfg.Files, f.RunID, f.ID)
	if err != nil {
		return storeError(err, "File", strconv.FormatInt(f.ID, 10))
	}
	defer rc.Close()
	set()
	h.Set("Content-Length", strconv.FormatInt(f.Size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	if err := copyVerified(w, rc); err != nil {
		s.log.Error("download aborted", "request_id", RequestID(r.Context()), "run_id", f.RunID, "file_id", f.ID, "err", err)
		panic(http.ErrAbortHandler) // the client must not take a corrupt file for a whole one
	}
	return nil
}

// copyVerified copies a checksum-verifying reader to w, always holding the
// latest chunk back until the next read succeeds, so that when the
// checksum fails at the end the response is short of its Content-Length
// and the client sees a broken transfer, not a complete corrupt file.
func copyVerified(w io.Writer, r io.Reader) error {
	bufs := [2][]byte{make([]byte, 32<<10), make([]byte, 32<<10)}
	var pending []byte
	for i := 0; ; i++ {
		buf := bufs[i%2]
		n, err := r.Read(buf)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if len(pending) > 0 {
			if _, werr := w.Write(pending); werr != nil {
				return werr
			}
		}
		pending = buf[:n]
		if errors.Is(err, io.EOF) {
			if len(pending) > 0 {
				_, werr := w.Write(pending)
				return werr
			}
			return nil
		}
	}
}

// document returns a completed run's result document.
func (s *Server) document(r *http.Request) (runstore.Run, *ve.Document, error) {
	run, err := s.getRun(r.Context(), r)
	if err != nil {
		return run, nil, err
	}
	if run.Status != runstore.StatusCompleted || len(run.Results) == 0 {
		return run, nil, &Error{Status: http.StatusNotFound, Code: CodeNotFound,
			Message: "run has no results (status " + string(run.Status) + ")",
			Details: map[string]any{"resource": "Results", "identifier": run.ID, "status": run.Status}}
	}
	var doc ve.Document
	if err := json.Unmarshal(run.Results, &doc); err != nil || doc.Schema == "" {
		return run, nil, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "run has no VE results",
			Details: map[string]any{"resource": "Results", "identifier": run.ID}}
	}
	return run, &doc, nil
}

// handleVEData serves the correction grids: the predecessor's shape (rpm and
// load as integers, corrections, before and after around 100) for the
// first cylinder, and every cylinder under "cylinders".
func (s *Server) handleVEData(w http.ResponseWriter, r *http.Request) error {
	run, doc, err := s.document(r)
	if err != nil {
		return err
	}
	ints := func(a []float64) []int {
		out := make([]int, len(a))
		for i, v := range a {
			out[i] = int(math.Round(v))
		}
		return out
	}
	type cyl struct {
		Name        string       `json:"name"`
		Corrections [][]float64  `json:"corrections"`
		Before      [][]float64  `json:"before"`
		After       [][]float64  `json:"after"`
		Hits        [][]int      `json:"hits"`
		Confidence  [][]string   `json:"confidence"`
		Percent     [][]*float64 `json:"percent"`
	}
	cyls := make([]cyl, len(doc.Cylinders))
	for ci, c := range doc.Cylinders {
		cc := cyl{Name: c.Name, Hits: c.Hits, Confidence: c.Confidence, Percent: c.Percent}
		for _, row := range c.Percent {
			corr, before, after := make([]float64, len(row)), make([]float64, len(row)), make([]float64, len(row))
			for j, v := range row {
				if v != nil {
					corr[j] = *v
				}
				before[j] = 100
				after[j] = 100 + corr[j]
			}
			cc.Corrections = append(cc.Corrections, corr)
			cc.Before = append(cc.Before, before)
			cc.After = append(cc.After, after)
		}
		cyls[ci] = cc
	}
	body := map[string]any{"run_id": run.ID, "rpm": ints(doc.RPM), "load": ints(doc.MAP), "cylinders": cyls}
	if len(cyls) > 0 {
		body["corrections"], body["before"], body["after"] = cyls[0].Corrections, cyls[0].Before, cyls[0].After
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// handleDiagnostics serves the run's report text and anomalies.
func (s *Server) handleDiagnostics(w http.ResponseWriter, r *http.Request) error {
	run, doc, err := s.document(r)
	if err != nil {
		return err
	}
	body := map[string]any{"run_id": run.ID, "anomalies": doc.Anomalies, "samples": doc.Samples,
		"source": doc.Source, "format": doc.Format}
	files, err := s.cfg.Runs.Files(r.Context(), run.ID)
	if err != nil {
		return storeError(err, "Run", run.ID)
	}
	if f, ok := latestNamed(files, "Diagnostics.txt"); ok {
		_, data, err := runstore.ReadFile(r.Context(), s.cfg.Runs, s.cfg.Files, run.ID, f.ID)
		if err != nil {
			return storeError(err, "File", "Diagnostics.txt")
		}
		body["report"] = string(bytes.ToValidUTF8(data, []byte("?")))
	}
	cyl := make([]map[string]any, len(doc.Cylinders))
	for i, c := range doc.Cylinders {
		cyl[i] = map[string]any{"name": c.Name, "accepted": c.Accepted, "rejected": c.Rejected, "cells_clamped": c.Clamped}
	}
	body["cylinders"] = cyl
	writeJSON(w, http.StatusOK, body)
	return nil
}
