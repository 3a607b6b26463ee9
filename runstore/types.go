package runstore

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Status is the lifecycle state of a run. It is a closed set; see ParseStatus.
type Status string

// The statuses. A run is created Queued; Processing, Completed, Failed and
// Cancelled follow the transition table of CanTransition.
const (
	StatusQueued     Status = "queued"
	StatusProcessing Status = "processing"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
	StatusCancelled  Status = "cancelled"
)

// Statuses returns every valid Status, in a new slice the caller may keep.
func Statuses() []Status {
	return []Status{StatusQueued, StatusProcessing, StatusCompleted, StatusFailed, StatusCancelled}
}

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusQueued, StatusProcessing, StatusCompleted, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Terminal reports whether no further transition is allowed from s.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// CanTransition reports whether a run may move from one status to another:
// queued → processing | failed | cancelled, and processing → completed |
// failed | cancelled. Terminal statuses have no way out, and a status never
// "changes" to itself.
func CanTransition(from, to Status) bool {
	switch from {
	case StatusQueued:
		return to == StatusProcessing || to == StatusFailed || to == StatusCancelled
	case StatusProcessing:
		return to == StatusCompleted || to == StatusFailed || to == StatusCancelled
	}
	return false
}

// ParseStatus returns the Status named by s. Besides the canonical names it
// accepts the predecessor's vocabularies, case-insensitively: pending →
// queued, running → processing, complete → completed, error → failed,
// canceled → cancelled.
func ParseStatus(s string) (Status, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch v {
	case "pending":
		return StatusQueued, nil
	case "running":
		return StatusProcessing, nil
	case "complete":
		return StatusCompleted, nil
	case "error":
		return StatusFailed, nil
	case "canceled":
		return StatusCancelled, nil
	}
	if st := Status(v); st.Valid() {
		return st, nil
	}
	return "", invalid("status", "unknown status %q", s)
}

// RunSource says where a run came from. It is a closed set; see ParseSource.
// (It is not a dyno.Source, which yields samples.)
type RunSource string

// The sources.
const (
	SourceUpload    RunSource = "upload"
	SourceJetstream RunSource = "jetstream"
	SourceJetDrive  RunSource = "jetdrive"
	SourceSimulator RunSource = "simulator"
	SourceAPI       RunSource = "api"
	// SourceImport marks a run imported from another tool's records (see
	// Importer); its analysis was made there, not here.
	SourceImport RunSource = "import"
)

// Sources returns every valid RunSource, in a new slice the caller may keep.
func Sources() []RunSource {
	return []RunSource{SourceUpload, SourceJetstream, SourceJetDrive, SourceSimulator, SourceAPI, SourceImport}
}

// Valid reports whether s is one of the defined sources.
func (s RunSource) Valid() bool {
	switch s {
	case SourceUpload, SourceJetstream, SourceJetDrive, SourceSimulator, SourceAPI, SourceImport:
		return true
	}
	return false
}

// ParseSource returns the RunSource named by s. Besides the canonical names it
// accepts the predecessor's: manual_upload → upload, simulator_pull and
// simulate → simulator, real → jetdrive.
func ParseSource(s string) (RunSource, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	switch v {
	case "manual_upload":
		return SourceUpload, nil
	case "simulator_pull", "simulate":
		return SourceSimulator, nil
	case "real":
		return SourceJetDrive, nil
	}
	if src := RunSource(v); src.Valid() {
		return src, nil
	}
	return "", invalid("source", "unknown source %q", s)
}

// Stats are the summary numbers of a completed analysis, stored as columns
// so runs can be filtered and sorted on them. A nil field is unknown.
type Stats struct {
	PeakHP           *float64 `json:"peak_hp,omitempty"`     // horsepower
	PeakTorque       *float64 `json:"peak_torque,omitempty"` // ft-lb
	AFRMean          *float64 `json:"afr_mean,omitempty"`
	AFRStd           *float64 `json:"afr_std,omitempty"`
	CorrectedCells   *int64   `json:"corrected_cells,omitempty"`    // VE cells with a correction
	MaxCorrectionPct *float64 `json:"max_correction_pct,omitempty"` // largest |correction| in percent
}

// RunError is the structured error of a failed run. Message is safe to show
// a client; Detail is internal.
type RunError struct {
	Stage   string `json:"stage,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
	Detail  string `json:"detail,omitempty"`
}

// Run is one stored run.
type Run struct {
	ID          string          `json:"id"`
	Tenant      string          `json:"tenant,omitempty"` // the owner; "" for runs made without a key
	Version     int64           `json:"version"`          // bumped by every write; pass it back in Update
	Status      Status          `json:"status"`
	Source      RunSource       `json:"source"`
	Stage       string          `json:"stage,omitempty"`
	Progress    float64         `json:"progress"` // 0..1
	Message     string          `json:"message,omitempty"`
	Filename    string          `json:"filename,omitempty"`
	InputSize   int64           `json:"input_size,omitempty"` // bytes
	Vehicle     string          `json:"vehicle,omitempty"`
	JetstreamID string          `json:"jetstream_id,omitempty"`
	Settings    json.RawMessage `json:"settings,omitempty"`
	Results     json.RawMessage `json:"results,omitempty"`
	Error       *RunError       `json:"error,omitempty"`
	Stats       Stats           `json:"stats"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	CompletedAt time.Time       `json:"completed_at,omitzero"` // zero until the run reaches a terminal status
}

// NewRun is the input of Create. The store assigns the id, the Queued
// status, version 1 and the timestamps.
type NewRun struct {
	// Tenant owns the run: the tenant of the API key that made it, or ""
	// for runs made without one (authentication off, Jetstream, JetDrive
	// captures, imports, and runs stored before tenants existed), which
	// belong to the server's default tenant. See ValidTenant.
	Tenant      string
	Source      RunSource
	Filename    string // the user's name for the input, no path
	InputSize   int64
	Vehicle     string
	JetstreamID string
	Settings    json.RawMessage // any JSON document, or nil
}

// Update changes a run's status, stage, progress or message. Version must be
// the run's current version; a stale one fails with ErrConflict. Zero
// Status and nil pointers leave a field unchanged.
type Update struct {
	Version  int64
	Status   Status
	Stage    *string
	Progress *float64
	Message  *string
	// Settings, when not nil, replaces the run's Settings document (for a
	// caller that keeps structured state of its own there, such as the
	// Jetstream poller's status and attempt count).
	Settings json.RawMessage
	Reason   string // recorded in the status history when Status changes
}

// Result is what Complete stores.
type Result struct {
	Results json.RawMessage // any JSON document, or nil
	Stats   Stats
	Message string
}

// StatusChange is one entry of a run's status history.
type StatusChange struct {
	From   Status    `json:"from,omitempty"` // empty for the creation entry
	To     Status    `json:"to"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Sort is the order of List.
type Sort string

// The orders.
const (
	// SortNewest orders runs newest first by (CreatedAt, ID).
	SortNewest Sort = ""
	// SortPeakHP orders runs by Stats.PeakHP, highest first, then newest
	// first; runs without a peak power are left out.
	SortPeakHP Sort = "peak_hp"
)

// Filter selects runs for List. Zero fields do not filter. Cursor continues
// after the last run of a previous Page (of the same Sort); keyset
// pagination keeps the order stable under concurrent inserts.
type Filter struct {
	// Tenants, when not empty, keeps runs owned by one of them ("" names
	// the runs made without a key).
	Tenants       []string
	Statuses      []Status
	Sources       []RunSource
	CreatedAfter  time.Time // inclusive
	CreatedBefore time.Time // exclusive
	// Text matches, case-insensitively, a substring of the filename or vehicle.
	Text        string
	JetstreamID string
	MinPeakHP   *float64
	Sort        Sort
	Limit       int    // 0 means DefaultLimit; more than MaxLimit is an error
	Cursor      string // Page.Next from the previous call, or ""
}

// List limits.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// Page is one page of List.
type Page struct {
	Runs []Run  `json:"runs"`
	Next string `json:"next"` // "" when there are no more runs
}

// FileMeta describes a file's contents and where a FileStore keeps them.
type FileMeta struct {
	Name        string `json:"name"`         // a base name, no path
	ContentType string `json:"content_type"` // e.g. "text/csv"
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`      // 64 lowercase hex digits
	StorageKey  string `json:"storage_key"` // the FileStore's key
}

// File is a file attached to a run.
type File struct {
	ID    int64  `json:"id"`
	RunID string `json:"run_id"`
	FileMeta
	CreatedAt time.Time `json:"created_at"`
}

// Field limits enforced by every implementation.
const (
	maxShortText = 255     // filename, vehicle, stage, ids, file names, content types
	maxMessage   = 4096    // progress message, error message
	maxDetail    = 1 << 16 // error detail
)

func checkText(field, s string, max int, single bool) error {
	if len(s) > max {
		return invalid(field, "longer than %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return invalid(field, "not valid UTF-8")
	}
	for i, r := range s {
		if r == 0 || (single && unicode.IsControl(r)) {
			return invalid(field, "control character %U at byte %d", r, i)
		}
	}
	return nil
}

func checkName(field, s string, required bool) error {
	if s == "" {
		if required {
			return invalid(field, "empty")
		}
		return nil
	}
	if err := checkText(field, s, maxShortText, true); err != nil {
		return err
	}
	if i := strings.IndexAny(s, `/\`); i >= 0 {
		return invalid(field, "path separator at byte %d (a name, not a path)", i)
	}
	if s == "." || s == ".." {
		return invalid(field, "%q is not a file name", s)
	}
	return nil
}

func checkJSON(field string, raw json.RawMessage) error {
	if raw == nil {
		return nil
	}
	if !json.Valid(raw) {
		var v any
		err := json.Unmarshal(raw, &v)
		return invalid(field, "not a JSON document: %v", err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return invalid(field, "not a JSON document: %v", err)
	}
	if path, ok := findNUL(v, "$"); ok {
		// PostgreSQL's JSONB cannot hold U+0000; refuse it everywhere alike.
		return invalid(field, "U+0000 in string at %s", path)
	}
	return nil
}

func findNUL(v any, path string) (string, bool) {
	switch x := v.(type) {
	case string:
		if strings.ContainsRune(x, 0) {
			return path, true
		}
	case []any:
		for i, e := range x {
			if p, ok := findNUL(e, path+"["+strconv.Itoa(i)+"]"); ok {
				return p, true
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) {
				return path, true
			}
			if p, ok := findNUL(e, path+"."+k); ok {
				return p, true
			}
		}
	}
	return "", false
}

func checkFloat(field string, p *float64) error {
	if p != nil && (math.IsNaN(*p) || math.IsInf(*p, 0)) {
		return invalid(field, "not a finite number")
	}
	return nil
}

func (s Stats) validate() error {
	for _, f := range []struct {
		name string
		p    *float64
	}{{"stats.peak_hp", s.PeakHP}, {"stats.peak_torque", s.PeakTorque}, {"stats.afr_mean", s.AFRMean},
		{"stats.afr_std", s.AFRStd}, {"stats.max_correction_pct", s.MaxCorrectionPct}} {
		if err := checkFloat(f.name, f.p); err != nil {
			return err
		}
	}
	if s.CorrectedCells != nil && *s.CorrectedCells < 0 {
		return invalid("stats.corrected_cells", "negative")
	}
	return nil
}

// Validate returns an *InvalidError naming the first invalid field of n.
func (n NewRun) Validate() error {
	if n.Tenant != "" && !ValidTenant(n.Tenant) {
		return invalid("tenant", "%q: want 1 to 64 of [A-Za-z0-9._:-], starting with a letter or digit", truncate(n.Tenant, 80))
	}
	if !n.Source.Valid() {
		return invalid("source", "unknown source %q", n.Source)
	}
	if err := checkName("filename", n.Filename, false); err != nil {
		return err
	}
	if n.InputSize < 0 {
		return invalid("input_size", "negative")
	}
	if err := checkText("vehicle", n.Vehicle, maxShortText, true); err != nil {
		return err
	}
	if err := checkText("jetstream_id", n.JetstreamID, 64, true); err != nil {
		return err
	}
	return checkJSON("settings", n.Settings)
}

// Validate returns an *InvalidError naming the first invalid field of u.
func (u Update) Validate() error {
	if u.Version < 1 {
		return invalid("version", "must be the run's current version (>= 1), got %d", u.Version)
	}
	if u.Status != "" && !u.Status.Valid() {
		return invalid("status", "unknown status %q", u.Status)
	}
	if u.Stage != nil {
		if err := checkText("stage", *u.Stage, maxShortText, true); err != nil {
			return err
		}
	}
	if u.Progress != nil {
		p := *u.Progress
		if math.IsNaN(p) || p < 0 || p > 1 {
			return invalid("progress", "%v is outside 0..1", p)
		}
	}
	if u.Settings != nil {
		if err := checkJSON("settings", u.Settings); err != nil {
			return err
		}
	}
	if u.Message != nil {
		if err := checkText("message", *u.Message, maxMessage, false); err != nil {
			return err
		}
	}
	return checkText("reason", u.Reason, maxMessage, false)
}

// Validate returns an *InvalidError naming the first invalid field of r.
func (r Result) Validate() error {
	if err := checkJSON("results", r.Results); err != nil {
		return err
	}
	if err := checkText("message", r.Message, maxMessage, false); err != nil {
		return err
	}
	return r.Stats.validate()
}

// Validate returns an *InvalidError naming the first invalid field of e.
func (e RunError) Validate() error {
	if e.Message == "" && e.Code == "" {
		return invalid("error", "needs a message or a code")
	}
	if err := checkText("error.stage", e.Stage, maxShortText, true); err != nil {
		return err
	}
	if err := checkText("error.code", e.Code, maxShortText, true); err != nil {
		return err
	}
	if err := checkText("error.message", e.Message, maxMessage, false); err != nil {
		return err
	}
	return checkText("error.detail", e.Detail, maxDetail, false)
}

// Validate returns an *InvalidError naming the first invalid field of m.
func (m FileMeta) Validate() error {
	if err := checkName("file.name", m.Name, true); err != nil {
		return err
	}
	if err := checkText("file.content_type", m.ContentType, maxShortText, true); err != nil {
		return err
	}
	if m.Size < 0 {
		return invalid("file.size", "negative")
	}
	if !isHex(m.SHA256, 64) {
		return invalid("file.sha256", "want 64 lowercase hex digits, got %q", m.SHA256)
	}
	if m.StorageKey == "" {
		return invalid("file.storage_key", "empty")
	}
	return checkText("file.storage_key", m.StorageKey, 1024, true)
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ValidTenant reports whether t is a tenant name: 1 to 64 characters of
// [A-Za-z0-9._:-] starting with a letter or a digit (package authkeys uses
// the same rule).
func ValidTenant(t string) bool {
	if len(t) == 0 || len(t) > 64 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != ':' && c != '-') {
			return false
		}
	}
	return true
}

// ApplyKind says what an apply record did.
type ApplyKind string

// The kinds of apply record.
const (
	// ApplyKindApply applied corrections to a base table: its files are
	// the applied table, the effective correction and the manifest.
	ApplyKindApply ApplyKind = "apply"
	// ApplyKindRollback undid the apply it follows: its file is the
	// restored table.
	ApplyKindRollback ApplyKind = "rollback"
)

// Files returns how many files a record of kind k has: 3 for an apply, 1 for
// a rollback, 0 for an unknown kind.
func (k ApplyKind) Files() int {
	switch k {
	case ApplyKindApply:
		return 3
	case ApplyKindRollback:
		return 1
	}
	return 0
}

// NewApply is the input of RecordApply: one apply or rollback of a run's
// cylinder, with the metadata of its files (CommitApply fills them in
// after storing the contents).
type NewApply struct {
	Cylinder string // e.g. "Front"
	Kind     ApplyKind
	// Parent is the id of the cylinder's latest record as the caller saw
	// it (0 for none). Records of a cylinder form a chain: a record whose
	// Parent is no longer the latest fails with ErrConflict, so two
	// writers never both build on the same state. A rollback's parent
	// must be an apply; a rollback with Parent 0 undoes an apply made
	// before apply records existed and is allowed only as the cylinder's
	// first record.
	Parent int64
	Files  []FileMeta
}

// Apply is a recorded apply or rollback.
type Apply struct {
	ID        int64     `json:"id"`
	RunID     string    `json:"run_id"`
	Cylinder  string    `json:"cylinder"`
	Kind      ApplyKind `json:"kind"`
	Parent    int64     `json:"parent"`
	Files     []File    `json:"files"`
	CreatedAt time.Time `json:"created_at"`
}

// Validate returns an *InvalidError naming the first invalid field of a.
func (a NewApply) Validate() error {
	if err := checkName("apply.cylinder", a.Cylinder, true); err != nil {
		return err
	}
	if len(a.Cylinder) > 32 {
		return invalid("apply.cylinder", "longer than 32 bytes")
	}
	want := a.Kind.Files()
	if want == 0 {
		return invalid("apply.kind", "unknown kind %q", a.Kind)
	}
	if a.Parent < 0 {
		return invalid("apply.parent", "negative")
	}
	if len(a.Files) != want {
		return invalid("apply.files", "a %s has %d files, got %d", a.Kind, want, len(a.Files))
	}
	for _, f := range a.Files {
		if err := f.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// CheckApplyParent enforces the chain rule of NewApply.Parent against the
// cylinder's latest record (nil for none).
func CheckApplyParent(runID string, a NewApply, latest *Apply) error {
	switch {
	case latest == nil && a.Parent != 0:
		return conflict("run %s cylinder %s has no apply record %d", runID, a.Cylinder, a.Parent)
	case latest != nil && latest.ID != a.Parent:
		return conflict("run %s cylinder %s changed: its latest apply record is %d, not %d", runID, a.Cylinder, latest.ID, a.Parent)
	case a.Kind == ApplyKindRollback && latest != nil && latest.Kind != ApplyKindApply:
		return conflict("run %s cylinder %s: record %d is a %s, there is no apply to roll back", runID, a.Cylinder, latest.ID, latest.Kind)
	}
	return nil
}

// ValidID reports whether id has the form of a store-generated run id.
func ValidID(id string) bool { return isHex(id, 32) }
