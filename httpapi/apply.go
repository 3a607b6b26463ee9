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

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/ve"
)

// decodeJSON reads a JSON request body into v, refusing unknown fields,
// trailing data and other content types.
func decodeJSON(r *http.Request, v any) error {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/json" {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia, Message: "send application/json"}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.As(err, &se):
			return badRequest(fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err))
		case errors.As(err, &te):
			return invalid(te.Field, fmt.Sprintf("field %q: want %s (at byte %d)", te.Field, te.Type, te.Offset))
		case errors.Is(err, io.EOF):
			return badRequest("empty JSON body")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
			return invalid(f, fmt.Sprintf("unknown field %q", f))
		}
		return badRequest("malformed JSON: " + err.Error())
	}
	if dec.More() {
		return badRequest("trailing data after the JSON body")
	}
	return nil
}

// applyRequest is the body of apply and dry-run.
type applyRequest struct {
	// BaseFileID is a file of the run holding the base VE table (see POST
	// /api/runs/{id}/tables).
	BaseFileID int64 `json:"base_file_id"`
	// Cylinder is front, rear or cylN; empty means front.
	Cylinder         string   `json:"cylinder"`
	MaxAdjustPercent *float64 `json:"max_adjust_percent"`
	MinVE            *float64 `json:"min_ve"`
	MaxVE            *float64 `json:"max_ve"`
	Comment          string   `json:"comment"`
}

// cylinderName validates a cylinder name and returns ve's spelling of it.
func cylinderName(c string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(c)) {
	case "", "front", "0":
		return ve.CylinderName(0), nil
	case "rear", "1":
		return ve.CylinderName(1), nil
	}
	lc := strings.ToLower(c)
	if n, err := strconv.Atoi(strings.TrimPrefix(lc, "cyl")); err == nil && strings.HasPrefix(lc, "cyl") && n >= 1 && n <= 8 {
		return ve.CylinderName(n - 1), nil
	}
	return "", invalid("cylinder", "cylinder must be front, rear or cyl1..cyl8")
}

func (s *Server) readTable(ctx context.Context, runID string, f runstore.File) (*ve.Table, error) {
	_, data, err := runstore.ReadFile(ctx, s.cfg.Runs, s.cfg.Files, runID, f.ID)
	if err != nil {
		return nil, storeError(err, "File", f.Name)
	}
	t, err := ve.ReadTableCSV(bytes.NewReader(data), f.Name)
	if err != nil {
		return nil, &Error{Status: http.StatusUnprocessableEntity, Code: "DATA_INTEGRITY_ERROR",
			Message: "stored table " + f.Name + " is not a VE table: " + err.Error(), Err: err}
	}
	return t, nil
}

func writeTable(t *ve.Table) ([]byte, error) {
	var b bytes.Buffer
	if err := t.WriteCSV(&b, ve.CSVFormat{Cell: ve.CellFormat{Decimals: t.Precision}}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// handleUploadTable stores a base VE table with a run, after checking it
// parses as one.
func (s *Server) handleUploadTable(w http.ResponseWriter, r *http.Request) error {
	run, err := s.getRun(r.Context(), r)
	if err != nil {
		return err
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "multipart/form-data" {
		return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeUnsupportedMedia,
			Message: "send multipart/form-data with the table in a field named file"}
	}
	body := s.newUploadBody(w, r)
	r.Body = body
	mr, err := r.MultipartReader()
	if err != nil {
		return badRequest("malformed multipart body: " + err.Error())
	}
	var data []byte
	var name string
	for {
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
		if part.FormName() != "file" {
			return invalid(part.FormName(), "unknown form field "+strconv.Quote(part.FormName()))
		}
		if data != nil {
			return badRequest("more than one file part")
		}
		n, herr := uploadName(part.FileName())
		if herr != nil {
			return herr
		}
		data, err = io.ReadAll(io.LimitReader(part, ve.MaxTableBytes+1))
		if err != nil {
			return uploadError(err, body)
		}
		if len(data) > ve.MaxTableBytes {
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
				Message: fmt.Sprintf("a VE table is at most %d bytes", ve.MaxTableBytes)}
		}
		name = n
	}
	if data == nil {
		return badRequest("No file provided")
	}
	t, err := ve.ReadTableCSV(bytes.NewReader(data), name)
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: CodeCSVParsing, Message: err.Error(), Err: err}
	}
	unlock := s.runLocks.lock(run.ID)
	defer unlock()
	f, err := runstore.Attach(r.Context(), s.cfg.Runs, s.cfg.Files, run.ID, "Base_"+name, "text/csv", bytes.NewReader(data))
	if err != nil {
		return storeError(err, "Run", run.ID)
	}
	writeJSON(w, http.StatusCreated, map[string]any{"file": s.viewFiles([]runstore.File{f})[0],
		"rows": t.Rows(), "cols": t.Cols(), "rpm": t.RPM, "map_kpa": t.MAP})
	return nil
}

// prepareApply loads what apply and dry-run need.
func (s *Server) prepareApply(r *http.Request) (runstore.Run, applyRequest, string, *ve.Table, *ve.Table, error) {
	var req applyRequest
	run, err := s.getRun(r.Context(), r)
	if err != nil {
		return run, req, "", nil, nil, err
	}
	if err := decodeJSON(r, &req); err != nil {
		return run, req, "", nil, nil, err
	}
	cyl, err := cylinderName(req.Cylinder)
	if err != nil {
		return run, req, "", nil, nil, err
	}
	if req.BaseFileID < 1 {
		return run, req, "", nil, nil, invalid("base_file_id", "base_file_id is required: upload the base VE table with POST /api/runs/{id}/tables")
	}
	for name, p := range map[string]*float64{"max_adjust_percent": req.MaxAdjustPercent, "min_ve": req.MinVE, "max_ve": req.MaxVE} {
		if p != nil && (math.IsNaN(*p) || math.IsInf(*p, 0) || *p < 0 || *p > 1000) {
			return run, req, "", nil, nil, invalid(name, name+" must be a number in 0..1000")
		}
	}
	if len(req.Comment) > 500 {
		return run, req, "", nil, nil, invalid("comment", "comment is at most 500 bytes")
	}
	if run.Status != runstore.StatusCompleted {
		return run, req, "", nil, nil, &Error{Status: http.StatusConflict, Code: CodeConflict,
			Message: "run is " + string(run.Status) + "; only a completed analysis has corrections to apply"}
	}
	bf, err := s.cfg.Runs.File(r.Context(), run.ID, req.BaseFileID)
	if err != nil {
		return run, req, "", nil, nil, storeError(err, "File", strconv.FormatInt(req.BaseFileID, 10))
	}
	files, err := s.cfg.Runs.Files(r.Context(), run.ID)
	if err != nil {
		return run, req, "", nil, nil, storeError(err, "Run", run.ID)
	}
	cf, ok := latestNamed(files, "VE_Multiplier_"+cyl+".csv")
	if !ok {
		return run, req, "", nil, nil, notFound("VE corrections for cylinder "+cyl, run.ID)
	}
	base, err := s.readTable(r.Context(), run.ID, bf)
	if err != nil {
		return run, req, "", nil, nil, err
	}
	corr, err := s.readTable(r.Context(), run.ID, cf)
	if err != nil {
		return run, req, "", nil, nil, err
	}
	return run, req, cyl, base, corr, nil
}

func (s *Server) apply(base, corr *ve.Table, req applyRequest, settings json.RawMessage) (*ve.Applied, error) {
	var lim ve.Limits
	if req.MaxAdjustPercent != nil {
		lim.MaxAdjustPercent = *req.MaxAdjustPercent
		if lim.MaxAdjustPercent == 0 {
			lim.MaxAdjustPercent = -1 // explicit 0: no clamp (the zero value means 7)
		}
	}
	if req.MinVE != nil {
		lim.MinVE = *req.MinVE
	}
	if req.MaxVE != nil {
		lim.MaxVE = *req.MaxVE
	}
	a, err := ve.Apply(base, corr, ve.ApplyOptions{Limits: lim, Settings: settings, Comment: req.Comment, Now: s.cfg.Now})
	if err != nil {
		if errors.Is(err, ve.ErrShape) || errors.Is(err, ve.ErrAxis) || errors.Is(err, ve.ErrPrecision) || errors.Is(err, ve.ErrTable) {
			return nil, &Error{Status: http.StatusBadRequest, Code: CodeValidation, Message: err.Error(), Err: err}
		}
		return nil, &Error{Status: http.StatusBadRequest, Code: CodeValidation, Message: "apply refused: " + err.Error(), Err: err}
	}
	return a, nil
}

func (s *Server) handleDryRun(w http.ResponseWriter, r *http.Request) error {
	run, req, cyl, base, corr, err := s.prepareApply(r)
	if err != nil {
		return err
	}
	a, err := s.apply(base, corr, req, run.Settings)
	if err != nil {
		return err
	}
	diff := a.Diff
	if diff == nil {
		diff = []ve.CellChange{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"dry_run": true, "run_id": run.ID, "cylinder": cyl,
		"cells_modified": a.Manifest.CellsChanged, "manifest": a.Manifest, "diff": diff})
	return nil
}

// latestApply returns the cylinder's latest apply record, nil for none.
func latestApply(records []runstore.Apply, cyl string) *runstore.Apply {
	for i := len(records) - 1; i >= 0; i-- {
		if records[i].Cylinder == cyl {
			return &records[i]
		}
	}
	return nil
}

// applyConflict maps a lost race on a cylinder's apply chain to 409.
func applyConflict(err error, cyl string) error {
	if errors.Is(err, runstore.ErrConflict) {
		return &Error{Status: http.StatusConflict, Code: CodeConflict,
			Message: "cylinder " + cyl + " was applied or rolled back concurrently; reload and retry", Err: err}
	}
	return storeError(err, "Run", "")
}

// handleApply applies a run's corrections for one cylinder to a base table.
// The applied table, the effective correction and the manifest are stored
// as one unit (runstore.CommitApply): the contents are written and synced
// first, then one transaction records them with the apply, so a crash
// leaves either the previous state or the new one.
func (s *Server) handleApply(w http.ResponseWriter, r *http.Request) error {
	run, req, cyl, base, corr, err := s.prepareApply(r)
	if err != nil {
		return err
	}
	unlock := s.runLocks.lock(run.ID)
	defer unlock()
	records, err := s.cfg.Runs.Applies(r.Context(), run.ID)
	if err != nil {
		return storeError(err, "Run", run.ID)
	}
	var parent int64
	if head := latestApply(records, cyl); head != nil {
		parent = head.ID
	}
	a, err := s.apply(base, corr, req, run.Settings)
	if err != nil {
		return err
	}
	data, err := a.Encode()
	if err != nil {
		return err
	}
	names := ve.ApplyFileNames(cyl)
	rec, err := runstore.CommitApply(r.Context(), s.cfg.Runs, s.cfg.Files, run.ID,
		runstore.NewApply{Cylinder: cyl, Kind: runstore.ApplyKindApply, Parent: parent},
		[]runstore.Content{
			{Name: names[0], ContentType: "text/csv", Data: data[0]},
			{Name: names[1], ContentType: "text/csv", Data: data[1]},
			{Name: names[2], ContentType: "application/json", Data: data[2]},
		})
	if err != nil {
		return applyConflict(err, cyl)
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "run_id": run.ID, "cylinder": cyl, "apply_id": rec.ID,
		"applied_at": a.Manifest.AppliedAt, "cells_modified": a.Manifest.CellsChanged,
		"manifest": a.Manifest, "files": s.viewFiles(rec.Files)})
	return nil
}

type rollbackRequest struct {
	Cylinder string `json:"cylinder"`
}

// handleRollback undoes the cylinder's latest apply, restoring its base
// table exactly (ve.Rollback checks every hash of the manifest). The three
// files come from one apply record, never from different applies; the
// restored table is recorded as a rollback in one transaction.
func (s *Server) handleRollback(w http.ResponseWriter, r *http.Request) error {
	run, err := s.getRun(r.Context(), r)
	if err != nil {
		return err
	}
	var req rollbackRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	cyl, err := cylinderName(req.Cylinder)
	if err != nil {
		return err
	}
	unlock := s.runLocks.lock(run.ID)
	defer unlock()
	records, err := s.cfg.Runs.Applies(r.Context(), run.ID)
	if err != nil {
		return storeError(err, "Run", run.ID)
	}
	var af, ef, mf runstore.File
	var parent int64
	if head := latestApply(records, cyl); head != nil {
		if head.Kind != runstore.ApplyKindApply {
			return &Error{Status: http.StatusConflict, Code: CodeConflict,
				Message: "the latest apply for cylinder " + cyl + " was already rolled back"}
		}
		af, ef, mf, parent = head.Files[0], head.Files[1], head.Files[2], head.ID
	} else {
		// Applies made before apply records existed: the latest files by
		// name, as they were found then; the manifest's hashes refuse a
		// mixture of different applies.
		files, err := s.cfg.Runs.Files(r.Context(), run.ID)
		if err != nil {
			return storeError(err, "Run", run.ID)
		}
		var ok1, ok2, ok3 bool
		names := ve.ApplyFileNames(cyl)
		af, ok1 = latestNamed(files, names[0])
		ef, ok2 = latestNamed(files, names[1])
		mf, ok3 = latestNamed(files, names[2])
		if !ok1 || !ok2 || !ok3 {
			return invalid("cylinder", "No VE corrections have been applied to this run for cylinder "+cyl)
		}
		if rf, ok := latestNamed(files, "VE_Restored_"+cyl+".csv"); ok && rf.ID > mf.ID {
			return &Error{Status: http.StatusConflict, Code: CodeConflict,
				Message: "the latest apply for cylinder " + cyl + " was already rolled back"}
		}
	}
	applied, err := s.readTable(r.Context(), run.ID, af)
	if err != nil {
		return err
	}
	eff, err := s.readTable(r.Context(), run.ID, ef)
	if err != nil {
		return err
	}
	_, mdata, err := runstore.ReadFile(r.Context(), s.cfg.Runs, s.cfg.Files, run.ID, mf.ID)
	if err != nil {
		return storeError(err, "File", mf.Name)
	}
	var m ve.Manifest
	if err := json.Unmarshal(mdata, &m); err != nil {
		return &Error{Status: http.StatusUnprocessableEntity, Code: "DATA_INTEGRITY_ERROR", Message: "stored manifest is malformed", Err: err}
	}
	restored, err := ve.Rollback(applied, eff, &m)
	if err != nil {
		if errors.Is(err, ve.ErrHashMismatch) {
			return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: err.Error(), Err: err}
		}
		return &Error{Status: http.StatusUnprocessableEntity, Code: "DATA_INTEGRITY_ERROR", Message: err.Error(), Err: err}
	}
	data, err := writeTable(restored)
	if err != nil {
		return err
	}
	rec, err := runstore.CommitApply(r.Context(), s.cfg.Runs, s.cfg.Files, run.ID,
		runstore.NewApply{Cylinder: cyl, Kind: runstore.ApplyKindRollback, Parent: parent},
		[]runstore.Content{{Name: "VE_Restored_" + cyl + ".csv", ContentType: "text/csv", Data: data}})
	if err != nil {
		return applyConflict(err, cyl)
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "run_id": run.ID, "cylinder": cyl, "apply_id": rec.ID,
		"rolled_back_at": s.cfg.Now().UTC(), "base_sha256": m.BaseSHA256, "file": s.viewFiles(rec.Files)[0]})
	return nil
}

// legacyApplyRequest is the predecessor's POST /api/apply body: the run id
// in the body, plus this API's apply fields; dry_run asks for a dry run.
type legacyApplyRequest struct {
	RunID  string `json:"run_id"`
	DryRun bool   `json:"dry_run"`
	applyRequest
}

// legacyRollbackRequest is the predecessor's POST /api/rollback body.
type legacyRollbackRequest struct {
	RunID string `json:"run_id"`
	rollbackRequest
}

// forward re-issues a legacy request to the route that takes the run id in
// the path, with body as its JSON body.
func forward(w http.ResponseWriter, r *http.Request, runID string, body any, h func(http.ResponseWriter, *http.Request) error) error {
	if runID == "" {
		return invalid("run_id", "run_id is required")
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(b))
	r2.ContentLength = int64(len(b))
	r2.SetPathValue("id", runID)
	return h(w, r2)
}

func (s *Server) handleLegacyApply(w http.ResponseWriter, r *http.Request) error {
	var req legacyApplyRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	h := s.handleApply
	if req.DryRun {
		h = s.handleDryRun
	}
	return forward(w, r, req.RunID, req.applyRequest, h)
}

func (s *Server) handleLegacyRollback(w http.ResponseWriter, r *http.Request) error {
	var req legacyRollbackRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	return forward(w, r, req.RunID, req.rollbackRequest, s.handleRollback)
}
