package dynoai3import

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dynoai/dynoai/runstore"
	"github.com/dynoai/dynoai/ve"
)

// plan is one folder read and verified, ready to store.
type plan struct {
	folder  Folder
	runID   string // the predecessor's
	key     string
	imp     runstore.ImportRun // without file metadata
	files   []pfile
	applies []papply
	record  record
}

// pfile is a file to store: on disk (path) or made by the importer (data).
type pfile struct {
	path        string
	data        []byte
	name        string
	contentType string
	size        int64
	sha         string
}

type papply struct {
	cylinder string
	kind     runstore.ApplyKind
	files    []pfile
	at       time.Time
}

// record is what the imported run's results say about where it came from.
type record struct {
	Tool        string          `json:"tool"`
	Family      Family          `json:"family"`
	Letter      string          `json:"family_letter"`
	Folder      string          `json:"folder"`
	RunID       string          `json:"run_id,omitempty"`
	ToolVersion string          `json:"tool_version,omitempty"`
	Status      string          `json:"status"`
	Stage       string          `json:"last_stage,omitempty"`
	Input       *inputRecord    `json:"input,omitempty"`
	Stats       json.RawMessage `json:"predecessor_stats,omitempty"`
	Summary     json.RawMessage `json:"predecessor_summary,omitempty"`
	Files       []fileRecord    `json:"files"`
	Applies     int             `json:"applies,omitempty"`
	Notes       []string        `json:"notes,omitempty"`
}

type inputRecord struct {
	Path   string `json:"path,omitempty"` // as the predecessor recorded it
	SHA256 string `json:"sha256,omitempty"`
	Size   int64  `json:"size_bytes,omitempty"`
	Found  string `json:"found,omitempty"` // the file stored, "" when not found
	CRLF   bool   `json:"hash_of_crlf_form,omitempty"`
}

type fileRecord struct {
	Name       string `json:"name"`
	Path       string `json:"path"`       // in the folder
	Registered bool   `json:"registered"` // size and SHA-256 vouched for by the manifest (and verified)
}

// FolderError says why a folder was skipped; nothing of it was stored.
type FolderError struct {
	Folder string // relative to the root
	File   string // the file at fault, relative to the folder, or ""
	Err    error
}

func (e *FolderError) Error() string {
	s := e.Err.Error()
	if e.File != "" {
		s = e.File + ": " + s
	}
	if e.Folder != "" {
		s = e.Folder + ": " + s
	}
	return s
}

func (e *FolderError) Unwrap() error { return e.Err }

// ErrCorrupt matches a FolderError whose folder contradicts its own
// manifest: a registered output missing, of another size or hash, or a
// manifest that does not parse.
var ErrCorrupt = errors.New("dynoai3import: corrupted run folder")

// corruption is an error matching ErrCorrupt that reads as its message.
type corruption struct{ msg string }

func (c *corruption) Error() string        { return c.msg }
func (c *corruption) Is(target error) bool { return target == ErrCorrupt }

// reader reads folders into plans.
type reader struct {
	opts   Options
	inputs *inputIndex
}

func (rd *reader) read(f Folder) (*plan, error) {
	p := &plan{folder: f, record: record{Tool: "DynoAI_3", Family: f.Family, Letter: f.Family.Letter(), Folder: f.Rel}}
	var err error
	switch f.Family {
	case FamilyToolkit, FamilyAPI:
		err = rd.readToolkit(p, f.Path, "")
	case FamilyRunManager:
		err = rd.readRunManager(p)
	case FamilyJetDrive:
		err = rd.readJetDrive(p)
	case FamilyAutoTune:
		err = rd.readAutoTune(p)
	case FamilyTransient:
		err = rd.readTransient(p)
	case FamilyNoManifest:
		err = rd.readNoManifest(p)
	case FamilyEmpty:
		return nil, &FolderError{Folder: f.Rel, Err: errors.New("empty: a run that stopped before writing anything; nothing to import")}
	default:
		err := f.Err
		if err == nil {
			err = errors.New("not a run folder")
		}
		return nil, &FolderError{Folder: f.Rel, Err: fmt.Errorf("cannot be read: %w", err)}
	}
	if err != nil {
		var fe *FolderError
		if errors.As(err, &fe) {
			return nil, err
		}
		return nil, &FolderError{Folder: f.Rel, Err: err}
	}
	if p.imp.Run.Source == "" {
		p.imp.Run.Source = runstore.SourceImport
	}
	p.imp.Run.Tenant = rd.opts.Tenant
	p.imp.Key = p.key
	if p.imp.Reason == "" {
		p.imp.Reason = fmt.Sprintf("imported from DynoAI_3 %s folder %s", f.Family, f.Rel)
	}
	if len(p.imp.Reason) > 1000 {
		p.imp.Reason = p.imp.Reason[:1000]
	}
	p.record.Applies = len(p.applies)
	res, err := json.Marshal(map[string]any{"import": p.record})
	if err != nil {
		return nil, &FolderError{Folder: f.Rel, Err: err}
	}
	p.imp.Results = res
	return p, nil
}

// corrupt builds the error of a folder that contradicts its manifest.
func corrupt(folder, file, format string, args ...any) error {
	return &FolderError{Folder: folder, File: file, Err: &corruption{fmt.Sprintf(format, args...)}}
}

// readJSON reads the JSON file name of dir into v and returns its bytes:
// a file that cannot be read or is not one JSON document fails the folder
// (the latter as corrupted).
func (p *plan) readJSON(dir, name string, v any) ([]byte, error) {
	raw, err := readLimited(filepath.Join(dir, name), maxManifest)
	if err != nil {
		return nil, &FolderError{Folder: p.folder.Rel, File: name, Err: err}
	}
	if err := strictJSON(raw, v); err != nil {
		return nil, corrupt(p.folder.Rel, name, "%v", err)
	}
	return raw, nil
}

// toolkitManifest is dynoai.manifest@1 (the toolkit's, also in the API's
// and the RunManager's folders), as far as the import reads it.
type toolkitManifest struct {
	SchemaID    string `json:"schema_id"`
	ToolVersion string `json:"tool_version"`
	RunID       string `json:"run_id"`
	Status      struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		LastStage string `json:"last_stage"`
	} `json:"status"`
	Input struct {
		Path      string `json:"path"`
		SizeBytes int64  `json:"size_bytes"`
		SHA256    string `json:"sha256"`
	} `json:"input"`
	Config json.RawMessage `json:"config"`
	Timing struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"timing"`
	Stats   json.RawMessage `json:"stats"`
	Outputs []struct {
		Name      string `json:"name"`
		Path      string `json:"path"`
		Schema    string `json:"schema"`
		SizeBytes int64  `json:"size_bytes"`
		SHA256    string `json:"sha256"`
	} `json:"outputs"`
}

// readToolkit reads a folder with a dynoai.manifest@1 manifest in
// dir/sub (sub is "" or the RunManager's "output").
func (rd *reader) readToolkit(p *plan, dir, sub string) error {
	mdir := filepath.Join(dir, sub)
	mname, err := manifestName(mdir)
	if err != nil {
		return corrupt(p.folder.Rel, path.Join(sub, "manifest.json"), "%v", err)
	}
	raw, err := readLimited(filepath.Join(mdir, mname), maxManifest)
	if err != nil {
		return &FolderError{Folder: p.folder.Rel, File: path.Join(sub, mname), Err: err}
	}
	var m toolkitManifest
	if err := strictJSON(raw, &m); err != nil {
		return corrupt(p.folder.Rel, path.Join(sub, mname), "%v", err)
	}
	if m.SchemaID != "dynoai.manifest@1" {
		return corrupt(p.folder.Rel, path.Join(sub, mname), "schema_id %q, want dynoai.manifest@1", m.SchemaID)
	}
	if m.RunID == "" {
		return corrupt(p.folder.Rel, path.Join(sub, mname), "no run_id")
	}
	if mname != "manifest.json" {
		if other, err := os.ReadFile(filepath.Join(mdir, "manifest.json")); err == nil && !bytes.Equal(other, raw) {
			p.note("manifest.json differs from %s; the run-id copy is used", mname)
		}
	}
	p.runID = m.RunID
	p.record.RunID = m.RunID
	p.record.ToolVersion = m.ToolVersion
	p.record.Status = m.Status.Code
	p.record.Stage = m.Status.LastStage
	if len(m.Stats) > 0 && string(m.Stats) != "{}" && string(m.Stats) != "null" {
		p.record.Stats = m.Stats
	}
	if len(m.Config) > 0 && string(m.Config) != "null" {
		p.imp.Run.Settings = m.Config
	}
	switch m.Status.Code {
	case "success":
		p.imp.Status = runstore.StatusCompleted
		p.imp.Message = truncate(m.Status.Message, 4096)
	case "error", "partial":
		p.imp.Status = runstore.StatusFailed
		code := "DYNOAI3_ERROR"
		if m.Status.Code == "partial" {
			code = "DYNOAI3_PARTIAL"
		}
		p.imp.Error = runError(m.Status.LastStage, code, m.Status.Message)
	default:
		return corrupt(p.folder.Rel, path.Join(sub, mname), "status.code %q, want success, error or partial", m.Status.Code)
	}
	p.imp.CreatedAt, p.imp.CompletedAt = rd.times(p, m.Timing.Start, m.Timing.End, filepath.Join(mdir, mname))

	// Every file of the folder, then the registered ones checked against
	// the manifest.
	if err := rd.addTree(p, dir); err != nil {
		return err
	}
	for _, o := range m.Outputs {
		name := baseName(o.Path)
		if name == "" {
			name = baseName(o.Name)
		}
		rp := path.Join(sub, name)
		i := slices.IndexFunc(p.files, func(f pfile) bool { return f.path == filepath.Join(mdir, name) })
		if o.SHA256 == "" {
			// The RunManager's stub runs register files without a hash.
			p.note("%s is registered without a hash (schema %s)", rp, o.Schema)
			continue
		}
		if i < 0 {
			return corrupt(p.folder.Rel, rp, "registered in the manifest but missing")
		}
		f := p.files[i]
		if f.size != o.SizeBytes {
			return corrupt(p.folder.Rel, rp, "%d bytes, the manifest says %d", f.size, o.SizeBytes)
		}
		if f.sha != strings.ToLower(o.SHA256) {
			return corrupt(p.folder.Rel, rp, "SHA-256 %s, the manifest says %s", f.sha, o.SHA256)
		}
		p.register(f.name)
	}
	if m.Status.Code == "partial" {
		p.note("a partial run: the files written before the failure are not registered")
	}

	// The input log.
	in := &inputRecord{Path: m.Input.Path, SHA256: strings.ToLower(m.Input.SHA256), Size: m.Input.SizeBytes}
	p.record.Input = in
	p.imp.Run.Filename = sanitizeName(baseName(m.Input.Path))
	p.imp.Run.InputSize = max(m.Input.SizeBytes, 0)
	if in.SHA256 != "" {
		if err := rd.findInput(p, in); err != nil {
			return err
		}
	}
	p.key = importKey(m.RunID, in.SHA256)
	statsFromDelta(p, filepath.Join(mdir, "VE_Correction_Delta_DYNO.csv"))
	if p.folder.Family == FamilyAPI {
		rd.readAPIApplies(p, dir)
	}
	return nil
}

// findInput looks for the input log: among the folder's files (the
// RunManager's input/, already added), in the API's uploads/<uuid>, in
// Options.InputDirs, and at the recorded path itself.
func (rd *reader) findInput(p *plan, in *inputRecord) error {
	for _, f := range p.files {
		if f.sha == in.SHA256 {
			in.Found = f.name
			p.register(f.name)
			return nil
		}
	}
	var candidates []string
	if p.folder.Family == FamilyAPI {
		up := filepath.Join(filepath.Dir(filepath.Dir(p.folder.Path)), "uploads", filepath.Base(p.folder.Path))
		if entries, err := os.ReadDir(up); err == nil {
			for _, e := range entries {
				if e.Type().IsRegular() {
					candidates = append(candidates, filepath.Join(up, e.Name()))
				}
			}
		}
	}
	if fp := localPath(in.Path); fp != "" {
		candidates = append(candidates, fp)
	}
	for _, c := range candidates {
		h, err := hashFile(c)
		if err != nil {
			continue
		}
		if h.lf == in.SHA256 || h.crlf == in.SHA256 {
			rd.addInput(p, in, c, h, h.crlf == in.SHA256 && h.lf != in.SHA256)
			return nil
		}
	}
	if hit, h, crlf, err := rd.inputs.lookup(in.SHA256); err != nil {
		return err
	} else if hit != "" {
		rd.addInput(p, in, hit, h, crlf)
		return nil
	}
	p.note("input log %s (SHA-256 %s) not found; the run is imported without it (pass the folder that holds it to look there)", in.Path, short(in.SHA256))
	return nil
}

func (rd *reader) addInput(p *plan, in *inputRecord, file string, h fileHash, crlf bool) {
	name := p.uniqueName(sanitizeName(filepath.Base(file)))
	p.files = append(p.files, pfile{path: file, name: name, contentType: contentType(name), size: h.size, sha: h.lf})
	p.register(name)
	in.Found = name
	in.CRLF = crlf
	if crlf {
		p.note("the manifest hashed the input's CRLF form; the file is stored as found (%s)", short(h.lf))
	}
	p.imp.Run.InputSize = h.size
}

// localPath returns the recorded input path if it names a regular file on
// this machine (a POSIX absolute path), else "".
func localPath(p string) string {
	if p == "" || !filepath.IsAbs(p) || strings.Contains(p, `\`) {
		return ""
	}
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		return p
	}
	return ""
}

// readAPIApplies turns /api/apply's and /api/rollback's files into apply
// records (the apply adopted with ve.Adopt so a rollback here undoes it
// exactly); the predecessor's own files stay as plain files of the run.
func (rd *reader) readAPIApplies(p *plan, dir string) {
	beforePath := filepath.Join(dir, "VE_Before_Apply.csv")
	appliedPath := filepath.Join(dir, "VE_Applied.csv")
	if !isFile(beforePath) || !isFile(appliedPath) {
		if isFile(appliedPath) || isFile(beforePath) {
			p.note("apply not recorded: VE_Before_Apply.csv and VE_Applied.csv are not both there")
		}
		return
	}
	var meta struct {
		AppliedAt    string   `json:"applied_at_utc"`
		MaxAdjustPct *float64 `json:"max_adjust_pct"`
		BaseFile     string   `json:"base_file"`
		Comment      string   `json:"comment"`
	}
	metaPath := filepath.Join(dir, "VE_Applied_meta.json")
	if raw, err := readLimited(metaPath, maxManifest); err == nil {
		if err := json.Unmarshal(raw, &meta); err != nil {
			p.note("VE_Applied_meta.json does not parse (%v); the apply is recorded without it", err)
		}
	}
	base, err := readTable(beforePath)
	if err != nil {
		p.note("apply not recorded: %v", err)
		return
	}
	applied, err := readTable(appliedPath)
	if err != nil {
		p.note("apply not recorded: %v", err)
		return
	}
	at := p.imp.CompletedAt
	if t, err := parseTime(meta.AppliedAt); err == nil {
		at = t
	} else if st, err := os.Stat(appliedPath); err == nil {
		at = st.ModTime()
	}
	opts := ve.ApplyOptions{Settings: p.imp.Run.Settings, Now: func() time.Time { return at },
		Comment: strings.TrimSpace("imported from DynoAI_3 run " + p.runID + " (VE_Before_Apply.csv, VE_Applied.csv) " + meta.Comment)}
	opts.Limits.MaxAdjustPercent = 7 // the predecessor's fixed clamp
	if meta.MaxAdjustPct != nil && *meta.MaxAdjustPct > 0 {
		opts.Limits.MaxAdjustPercent = *meta.MaxAdjustPct
	}
	a, err := ve.Adopt(base, applied, opts)
	if err != nil {
		p.note("apply not recorded: %v", err)
		return
	}
	cyl := ve.CylinderName(0)
	if strings.Contains(strings.ToLower(meta.BaseFile), "rear") {
		cyl = ve.CylinderName(1)
	}
	data, err := a.Encode()
	if err != nil {
		p.note("apply not recorded: %v", err)
		return
	}
	names := ve.ApplyFileNames(cyl)
	pa := papply{cylinder: cyl, kind: runstore.ApplyKindApply, at: at}
	for i := range data {
		pa.files = append(pa.files, generated(names[i], data[i]))
	}
	p.applies = append(p.applies, pa)

	// A rollback: VE_Restored.csv written after the apply it undid (a
	// later apply overwrites the apply's files, so an older rollback's
	// apply is gone and only its files are kept).
	restoredPath := filepath.Join(dir, "VE_Restored.csv")
	rs, err1 := os.Stat(restoredPath)
	as, err2 := os.Stat(appliedPath)
	if err1 != nil || err2 != nil {
		return
	}
	if rs.ModTime().Before(as.ModTime()) {
		p.note("VE_Restored.csv is older than VE_Applied.csv: it undid an earlier apply whose files were overwritten; kept as a file only")
		return
	}
	back, err := ve.Rollback(a.Table, a.Effective, &a.Manifest)
	if err != nil {
		p.note("rollback not recorded: %v", err)
		return
	}
	if restored, err := readTable(restoredPath); err == nil && !sameValues(restored, back, 0.01) {
		p.note("VE_Restored.csv differs from the base by more than 0.01 in some cell (the predecessor divided by its rounded factor); the rollback record restores the base exactly")
	}
	var b bytes.Buffer
	if err := back.WriteCSV(&b, ve.CSVFormat{Cell: ve.CellFormat{Decimals: back.Precision}}); err != nil {
		p.note("rollback not recorded: %v", err)
		return
	}
	p.applies = append(p.applies, papply{cylinder: cyl, kind: runstore.ApplyKindRollback, at: rs.ModTime(),
		files: []pfile{generated("VE_Restored_"+cyl+".csv", b.Bytes())}})
}

func sameValues(a, b *ve.Table, tol float64) bool {
	if !a.SameAxes(b) {
		return false
	}
	for i := range a.Values {
		x, y := a.Values[i], b.Values[i]
		if ve.Has(x) != ve.Has(y) || (ve.Has(x) && math.Abs(x-y) > tol) {
			return false
		}
	}
	return true
}

func generated(name string, data []byte) pfile {
	sum := sha256.Sum256(data)
	return pfile{data: data, name: name, contentType: contentType(name), size: int64(len(data)), sha: hex.EncodeToString(sum[:])}
}

func readTable(p string) (*ve.Table, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ve.ReadTableCSV(f, filepath.Base(p))
}

// statsFromDelta fills the corrected-cell count and largest correction
// from the toolkit's VE delta grid (percent), when the folder has one.
func statsFromDelta(p *plan, file string) {
	if !isFile(file) {
		return
	}
	t, err := readTable(file)
	if err != nil {
		p.note("VE_Correction_Delta_DYNO.csv does not parse as a grid (%v); no statistics", err)
		return
	}
	setCorrectionStats(p, t, func(pct float64) float64 { return pct })
}

// setCorrectionStats sets the run's corrected-cell count and largest
// correction from a grid whose cells pct turns into percent: cells that
// print other than 0.00 count.
func setCorrectionStats(p *plan, t *ve.Table, pct func(float64) float64) {
	var n int64
	var worst float64
	for _, v := range t.Values {
		if c := math.Abs(pct(v)); ve.Has(v) && c >= 0.005 {
			n++
			worst = max(worst, c)
		}
	}
	p.imp.Stats.CorrectedCells, p.imp.Stats.MaxCorrectionPct = &n, &worst
}

// runState is the RunManager's run_state.json.
type runState struct {
	RunID          string          `json:"run_id"`
	Status         string          `json:"status"`
	Source         string          `json:"source"`
	CreatedAt      string          `json:"created_at"`
	UpdatedAt      string          `json:"updated_at"`
	JetstreamID    *string         `json:"jetstream_id"`
	CurrentStage   *string         `json:"current_stage"`
	Error          *runStateError  `json:"error"`
	ResultsSummary json.RawMessage `json:"results_summary"`
}

type runStateError struct {
	Stage   string `json:"stage"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (rd *reader) readRunManager(p *plan) error {
	dir := p.folder.Path
	var st runState
	if _, err := p.readJSON(dir, "run_state.json", &st); err != nil {
		return err
	}
	if st.RunID == "" {
		return corrupt(p.folder.Rel, "run_state.json", "no run_id")
	}
	if _, err := manifestName(filepath.Join(dir, "output")); err == nil {
		if err := rd.readToolkit(p, dir, "output"); err != nil {
			return err
		}
	} else if err := rd.addTree(p, dir); err != nil {
		return err
	}
	p.runID = st.RunID
	p.record.RunID = st.RunID
	p.record.Status = st.Status
	if len(st.ResultsSummary) > 0 && string(st.ResultsSummary) != "null" {
		p.record.Summary = st.ResultsSummary
	}
	if st.JetstreamID != nil {
		p.imp.Run.JetstreamID = truncate(*st.JetstreamID, 64)
	}
	stage := ""
	if st.CurrentStage != nil {
		stage = *st.CurrentStage
	}
	p.imp.Error, p.imp.Message = nil, ""
	switch st.Status {
	case "complete":
		p.imp.Status = runstore.StatusCompleted
	case "error":
		p.imp.Status = runstore.StatusFailed
		e := runStateError{Stage: stage, Code: "DYNOAI3_ERROR", Message: "the predecessor's run failed"}
		if st.Error != nil {
			e = *st.Error
		}
		p.imp.Error = runError(e.Stage, e.Code, e.Message)
	default:
		p.imp.Status = runstore.StatusFailed
		p.imp.Error = runError(stage, "DYNOAI3_INTERRUPTED",
			fmt.Sprintf("the predecessor's run stopped in status %q and never finished", st.Status))
	}
	p.imp.CreatedAt, p.imp.CompletedAt = rd.times(p, st.CreatedAt, st.UpdatedAt, filepath.Join(dir, "run_state.json"))
	sha := ""
	for _, f := range p.files {
		if f.path == filepath.Join(dir, "input", "dynoai_input.csv") {
			sha = f.sha
			p.register(f.name)
			p.imp.Run.Filename = f.name
			p.imp.Run.InputSize = f.size
		}
	}
	if p.record.Input != nil && p.record.Input.SHA256 != "" {
		sha = p.record.Input.SHA256
	}
	p.key = importKey(st.RunID, sha)
	return nil
}

// jetDriveManifest is the JetDrive script's manifest.json (D1).
type jetDriveManifest struct {
	RunID      string `json:"run_id"`
	Timestamp  string `json:"timestamp"`
	SourceFile string `json:"source_file"`
	Analysis   struct {
		PeakHP        *float64 `json:"peak_hp"`
		PeakTQ        *float64 `json:"peak_tq"`
		OverallStatus string   `json:"overall_status"`
		TotalSamples  *int64   `json:"total_samples"`
	} `json:"analysis"`
}

func (rd *reader) readJetDrive(p *plan) error {
	dir := p.folder.Path
	var m jetDriveManifest
	if _, err := p.readJSON(dir, "manifest.json", &m); err != nil {
		return err
	}
	if m.RunID == "" {
		m.RunID = filepath.Base(dir)
	}
	if err := rd.addTree(p, dir); err != nil {
		return err
	}
	p.runID, p.record.RunID = m.RunID, m.RunID
	p.record.Status = "complete"
	if m.Analysis.OverallStatus != "" {
		p.record.Status = m.Analysis.OverallStatus
	}
	p.imp.Status = runstore.StatusCompleted
	p.imp.Message = "imported JetDrive run"
	p.imp.Run.Source = runstore.SourceImport
	p.imp.Stats.PeakHP = finite(m.Analysis.PeakHP)
	p.imp.Stats.PeakTorque = finite(m.Analysis.PeakTQ)
	p.imp.CreatedAt, p.imp.CompletedAt = rd.times(p, m.Timestamp, m.Timestamp, filepath.Join(dir, "manifest.json"))
	p.note("the JetDrive manifest registers no hashes: no file is vouched for")
	sha := ""
	for _, f := range p.files {
		if f.name == "run.csv" {
			sha = f.sha
			p.imp.Run.Filename = "run.csv"
			p.imp.Run.InputSize = f.size
		}
	}
	if t, err := readTable(filepath.Join(dir, "VE_Corrections_2D.csv")); err == nil {
		setCorrectionStats(p, t, func(m float64) float64 { return (m - 1) * 100 })
	}
	p.key = importKey(m.RunID, sha)
	return nil
}

func (rd *reader) readAutoTune(p *plan) error {
	dir := p.folder.Path
	var m map[string]any
	if _, err := p.readJSON(dir, "manifest.json", &m); err != nil {
		return err
	}
	str := func(k string) string { s, _ := m[k].(string); return s }
	runID := str("run_id")
	if runID == "" {
		runID = filepath.Base(dir)
	}
	if err := rd.addTree(p, dir); err != nil {
		return err
	}
	p.runID, p.record.RunID = runID, runID
	status := str("status")
	p.record.Status = status
	switch strings.ToLower(status) {
	case "", "complete", "completed", "success", "ok", "done":
		p.imp.Status = runstore.StatusCompleted
		p.imp.Message = "imported AutoTune session"
	default:
		p.imp.Status = runstore.StatusFailed
		msg := fmt.Sprintf("the AutoTune session ended in status %q", status)
		if errs, ok := m["errors"].([]any); ok && len(errs) > 0 {
			parts := make([]string, 0, len(errs))
			for _, e := range errs {
				parts = append(parts, fmt.Sprint(e))
			}
			msg += ": " + strings.Join(parts, "; ")
		}
		p.imp.Error = runError("", "DYNOAI3_ERROR", msg)
	}
	if pp, ok := m["peak_performance"].(map[string]any); ok {
		p.imp.Stats.PeakHP = number(pp, "peak_hp", "max_hp", "hp")
		p.imp.Stats.PeakTorque = number(pp, "peak_tq", "peak_torque", "max_tq", "torque")
	}
	start := str("created_at")
	if start == "" {
		start = str("timestamp")
	}
	p.imp.CreatedAt, p.imp.CompletedAt = rd.times(p, start, str("timestamp"), filepath.Join(dir, "manifest.json"))
	sha := ""
	if lf := baseName(str("log_file")); lf != "" {
		for _, f := range p.files {
			if f.name == sanitizeName(lf) {
				sha = f.sha
				p.imp.Run.Filename = f.name
				p.imp.Run.InputSize = f.size
			}
		}
	}
	if sum, err := json.Marshal(map[string]any{"analysis": m["analysis"], "peak_performance": m["peak_performance"]}); err == nil {
		p.record.Summary = sum
	}
	p.key = importKey(runID, sha)
	return nil
}

func (rd *reader) readTransient(p *plan) error {
	dir := p.folder.Path
	var m struct {
		GeneratedAt string `json:"generated_at"`
	}
	raw, err := p.readJSON(dir, "transient_metadata.json", &m)
	if err != nil {
		return err
	}
	if err := rd.addTree(p, dir); err != nil {
		return err
	}
	id := filepath.Base(dir)
	p.runID, p.record.RunID = id, id
	p.record.Status = "complete"
	p.record.Summary = raw
	p.imp.Status = runstore.StatusCompleted
	p.imp.Message = "imported transient-fuel analysis"
	p.imp.CreatedAt, p.imp.CompletedAt = rd.times(p, m.GeneratedAt, m.GeneratedAt, filepath.Join(dir, "transient_metadata.json"))
	sum := sha256.Sum256(raw)
	p.key = importKey("transient/"+id, hex.EncodeToString(sum[:]))
	return nil
}

func (rd *reader) readNoManifest(p *plan) error {
	dir := p.folder.Path
	if err := rd.addTree(p, dir); err != nil {
		return err
	}
	p.record.Status = "unknown"
	p.imp.Status = runstore.StatusFailed
	p.imp.Error = runError("", "DYNOAI3_NO_MANIFEST", "the predecessor wrote no manifest: the run failed or was killed before it finished")
	var oldest, newest time.Time
	h := sha256.New()
	for _, f := range p.files {
		fmt.Fprintf(h, "%s %s\n", f.name, f.sha)
		if st, err := os.Stat(f.path); err == nil {
			if oldest.IsZero() || st.ModTime().Before(oldest) {
				oldest = st.ModTime()
			}
			if st.ModTime().After(newest) {
				newest = st.ModTime()
			}
		}
	}
	p.imp.CreatedAt, p.imp.CompletedAt = oldest, newest
	p.note("no manifest: the times are the files' modification times, and no file is vouched for")
	p.key = importKey("folder/"+filepath.Base(dir), hex.EncodeToString(h.Sum(nil)))
	return nil
}

// addTree adds every regular file under dir, hashing it. Names are the
// path below dir with the RunManager's output/ and input/ dropped and other
// separators turned into "_"; symbolic links are skipped with a note.
func (rd *reader) addTree(p *plan, dir string) error {
	var paths []string
	err := filepath.WalkDir(dir, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			p.note("%s is a symbolic link; not followed", rel(dir, fp))
		case d.Type().IsRegular():
			paths = append(paths, fp)
		}
		return nil
	})
	if err != nil {
		return &FolderError{Folder: p.folder.Rel, Err: err}
	}
	for _, fp := range paths {
		if slices.ContainsFunc(p.files, func(f pfile) bool { return f.path == fp }) {
			continue
		}
		r := rel(dir, fp)
		name := r
		for _, pre := range []string{"output/", "input/"} {
			name = strings.TrimPrefix(name, pre)
		}
		name = p.uniqueName(sanitizeName(strings.ReplaceAll(name, "/", "_")))
		st, err := os.Stat(fp)
		if err != nil {
			return &FolderError{Folder: p.folder.Rel, File: r, Err: err}
		}
		if rd.opts.MaxFileSize > 0 && st.Size() > rd.opts.MaxFileSize {
			return &FolderError{Folder: p.folder.Rel, File: r, Err: fmt.Errorf("%d bytes, more than Options.MaxFileSize (%d)", st.Size(), rd.opts.MaxFileSize)}
		}
		h, err := hashFile(fp)
		if err != nil {
			return &FolderError{Folder: p.folder.Rel, File: r, Err: err}
		}
		p.files = append(p.files, pfile{path: fp, name: name, contentType: contentType(name), size: h.size, sha: h.lf})
		p.record.Files = append(p.record.Files, fileRecord{Name: name, Path: r})
	}
	return nil
}

func (p *plan) register(name string) {
	for i := range p.record.Files {
		if p.record.Files[i].Name == name {
			p.record.Files[i].Registered = true
			return
		}
	}
	p.record.Files = append(p.record.Files, fileRecord{Name: name, Path: name, Registered: true})
}

func (p *plan) note(format string, args ...any) {
	p.record.Notes = append(p.record.Notes, fmt.Sprintf(format, args...))
}

// uniqueName returns name, or name with a -2, -3 ... suffix when a file of
// the plan already has it.
func (p *plan) uniqueName(name string) string {
	taken := func(n string) bool {
		return slices.ContainsFunc(p.files, func(f pfile) bool { return f.name == n })
	}
	if !taken(name) {
		return name
	}
	ext := path.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	for i := 2; ; i++ {
		if n := fmt.Sprintf("%s-%d%s", stem, i, ext); !taken(n) {
			return n
		}
	}
}

// times parses a run's start and end; an unparsable or missing start is
// the file's modification time, with a note.
func (rd *reader) times(p *plan, start, end, file string) (time.Time, time.Time) {
	s, err := parseTime(start)
	if err != nil {
		if st, serr := os.Stat(file); serr == nil {
			s = st.ModTime().UTC()
		}
		if start != "" {
			p.note("start time %q does not parse (%v); the file's modification time is used", start, err)
		}
	}
	e, err := parseTime(end)
	if err != nil || e.Before(s) {
		e = s
	}
	return s, e
}

// parseTime reads the predecessor's three timestamp styles: ISO with
// milliseconds and Z (manifests, replays, RunState), isoformat with
// +00:00 and optional microseconds (decel, balance, JetDrive), and
// isoformat without a zone, read as UTC.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("empty")
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not a timestamp the predecessor writes: %q", s)
}

func runError(stage, code, msg string) *runstore.RunError {
	if msg == "" {
		msg = "(no message)"
	}
	e := &runstore.RunError{Stage: truncate(stage, 255), Code: truncate(code, 255), Message: truncate(msg, 4096)}
	if len(msg) > 4096 {
		e.Detail = truncate(msg, 1<<16)
	}
	return e
}

// importKey is the idempotency key: the predecessor's run id and its
// input's SHA-256 ("-" when unknown).
func importKey(runID, sha string) string {
	if sha == "" {
		sha = "-"
	}
	return truncate("dynoai3:"+runID+":"+sha, 255)
}

// baseName returns the last element of a POSIX or Windows path.
func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		p = p[i+1:]
	}
	return p
}

// sanitizeName makes a stored file name of a name from a folder: at most
// 255 bytes, no control characters, never "" or a dot name.
func sanitizeName(n string) string {
	n = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' || r == 0xfffd {
			return '_'
		}
		return r
	}, strings.ToValidUTF8(n, "_"))
	if n == "" || n == "." || n == ".." {
		n = "file"
	}
	return truncate(n, 255)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12] + "…"
	}
	return sha
}

func isFile(p string) bool {
	st, err := os.Lstat(p)
	return err == nil && st.Mode().IsRegular()
}

func finite(p *float64) *float64 {
	if p == nil || math.IsNaN(*p) || math.IsInf(*p, 0) {
		return nil
	}
	v := *p
	return &v
}

func number(m map[string]any, keys ...string) *float64 {
	for _, k := range keys {
		if v, ok := m[k].(float64); ok {
			return finite(&v)
		}
	}
	return nil
}

// strictJSON decodes one JSON document into v; trailing data is an error.
func strictJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("cut short: the JSON ends at byte %d before the document does", len(raw))
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("not JSON at byte %d: %v", se.Offset, err)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("field %s at byte %d: %v", te.Field, te.Offset, err)
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the JSON document at byte %d", dec.InputOffset())
	}
	return nil
}

func contentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".csv":
		return "text/csv"
	case ".txt", ".log":
		return "text/plain; charset=utf-8"
	case ".json":
		return "application/json"
	case ".png":
		return "image/png"
	case ".pdf":
		return "application/pdf"
	case ".html", ".htm":
		return "text/html; charset=utf-8"
	case ".pvv", ".xml":
		return "application/xml"
	case ".py":
		return "text/x-python"
	}
	return "application/octet-stream"
}
