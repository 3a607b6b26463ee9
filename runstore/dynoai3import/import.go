package dynoai3import

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/dynoai/dynoai/runstore"
)

// Options configure Import. The zero value imports into the default
// tenant.
type Options struct {
	// Tenant owns the imported runs; "" is the server's default tenant.
	Tenant string
	// DryRun reads and verifies every folder and reports what would be
	// imported, storing nothing. With a run store it also tells the
	// folders imported before (Existing); without one (nil), every
	// readable folder is WouldImport.
	DryRun bool
	// InputDirs are directories (searched recursively) where the input
	// logs of toolkit runs may be: their manifests record a path on the
	// machine that ran them, so the log is found by its SHA-256.
	InputDirs []string
	// MaxFileSize refuses a folder holding a larger file; 0 means 1 GiB.
	MaxFileSize int64
	// Logger receives a line per folder; nil discards them.
	Logger *slog.Logger
}

// Action is what Import did with a folder.
type Action string

// The actions.
const (
	Imported    Action = "imported"     // stored as a new run
	Existing    Action = "existing"     // imported before: nothing added
	WouldImport Action = "would-import" // a dry run: read and verified, not stored
	Skipped     Action = "skipped"      // not imported; Outcome.Err says why
)

// Outcome is what happened to one folder.
type Outcome struct {
	Folder  string // relative to the root
	Family  Family
	RunID   string // the predecessor's run id, when known
	Key     string // the idempotency key
	Action  Action
	Run     string          // the stored run's id (Imported, Existing)
	Status  runstore.Status // the run's status here
	Files   int
	Bytes   int64
	Applies int
	Notes   []string
	Err     error // why it was skipped (a *FolderError)
}

// Report is the outcome of every folder, in Scan's order.
type Report struct {
	Root     string
	Outcomes []Outcome
}

// Count returns how many folders had action a.
func (r *Report) Count(a Action) int {
	n := 0
	for _, o := range r.Outcomes {
		if o.Action == a {
			n++
		}
	}
	return n
}

// Summary is one line: the counts of each action.
func (r *Report) Summary() string {
	return fmt.Sprintf("%d folders: %d imported, %d already imported, %d would be imported, %d skipped",
		len(r.Outcomes), r.Count(Imported), r.Count(Existing), r.Count(WouldImport), r.Count(Skipped))
}

// Import reads every run folder under root (see Scan) into runs and files.
// A folder that cannot be read or contradicts its manifest is skipped and
// reported; the others are imported whole, one transaction each. Import
// returns an error, with the report so far, only when it cannot go on: the
// root cannot be read, ctx ends, or a store fails (runstore.ErrUnavailable).
// With Options.DryRun, files and runs may be nil.
func Import(ctx context.Context, root string, runs runstore.Importer, files runstore.FileStore, opts Options) (*Report, error) {
	if opts.MaxFileSize == 0 {
		opts.MaxFileSize = 1 << 30
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !opts.DryRun && (runs == nil || files == nil) {
		return nil, errors.New("dynoai3import: a run store and a file store are needed unless DryRun is set")
	}
	rep := &Report{Root: root}
	folders, err := Scan(root)
	if err != nil {
		return rep, err
	}
	rd := &reader{opts: opts, inputs: &inputIndex{dirs: opts.InputDirs, maxSize: opts.MaxFileSize}}
	for _, f := range folders {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		o := Outcome{Folder: f.Rel, Family: f.Family}
		p, err := rd.read(f)
		if err != nil {
			if rd.inputs.err != nil {
				return rep, rd.inputs.err
			}
			o.Action, o.Err = Skipped, err
			rep.Outcomes = append(rep.Outcomes, o)
			log.Warn("dynoai3import: skipped", "folder", f.Rel, "family", f.Family, "reason", err)
			continue
		}
		o.RunID, o.Key, o.Status, o.Notes = p.runID, p.key, p.imp.Status, p.record.Notes
		for _, pf := range p.files {
			o.Files++
			o.Bytes += pf.size
		}
		for _, a := range p.applies {
			o.Applies++
			for _, pf := range a.files {
				o.Files++
				o.Bytes += pf.size
			}
		}
		// A folder imported before is reported without storing its
		// contents again (Import would find the key too, after the puts).
		if runs != nil {
			run, err := runs.ImportedRun(ctx, opts.Tenant, p.key)
			switch {
			case err == nil:
				o.Action, o.Run, o.Status = Existing, run.ID, run.Status
				rep.Outcomes = append(rep.Outcomes, o)
				continue
			case !errors.Is(err, runstore.ErrNotFound):
				return rep, fmt.Errorf("dynoai3import: %s: %w", f.Rel, err)
			}
		}
		if opts.DryRun {
			o.Action = WouldImport
			rep.Outcomes = append(rep.Outcomes, o)
			continue
		}
		run, created, err := store(ctx, runs, files, p)
		if err != nil {
			var fe *FolderError
			var ie *runstore.InvalidError
			if errors.As(err, &fe) || errors.As(err, &ie) {
				o.Action, o.Err = Skipped, &FolderError{Folder: f.Rel, Err: err}
				rep.Outcomes = append(rep.Outcomes, o)
				log.Warn("dynoai3import: skipped", "folder", f.Rel, "family", f.Family, "reason", err)
				continue
			}
			return rep, fmt.Errorf("dynoai3import: %s: %w", f.Rel, err)
		}
		o.Run, o.Status = run.ID, run.Status
		o.Action = Existing
		if created {
			o.Action = Imported
		}
		rep.Outcomes = append(rep.Outcomes, o)
		log.Info("dynoai3import: "+string(o.Action), "folder", f.Rel, "family", f.Family, "run", run.ID, "files", o.Files)
	}
	return rep, nil
}

// store puts the plan's contents in files and imports the run. A file that
// changed since it was verified fails the folder. If putting the contents
// took so long that an orphan sweep could have removed the first of them,
// they are put again before the run refers to them.
func store(ctx context.Context, runs runstore.Importer, files runstore.FileStore, p *plan) (runstore.Run, bool, error) {
	var metas []runstore.FileMeta
	var applies []runstore.ImportApply
	for attempt := 0; ; attempt++ {
		start := time.Now()
		metas = metas[:0]
		for _, pf := range p.files {
			m, err := put(ctx, files, pf)
			if err != nil {
				return runstore.Run{}, false, err
			}
			metas = append(metas, m)
		}
		applies = applies[:0]
		for _, a := range p.applies {
			ia := runstore.ImportApply{Cylinder: a.cylinder, Kind: a.kind, At: a.at}
			for _, pf := range a.files {
				m, err := put(ctx, files, pf)
				if err != nil {
					return runstore.Run{}, false, err
				}
				ia.Files = append(ia.Files, m)
			}
			applies = append(applies, ia)
		}
		if time.Since(start) < runstore.MinUnreferencedAge/2 {
			break
		}
		if attempt == 1 {
			return runstore.Run{}, false, fmt.Errorf("storing the files took %v twice, longer than half the orphan sweep's grace period", time.Since(start).Round(time.Second))
		}
	}
	imp := p.imp
	imp.Files = metas
	imp.Applies = applies
	return runs.Import(ctx, imp)
}

// put stores one file and checks that it still has the hash it was
// verified with.
func put(ctx context.Context, files runstore.FileStore, pf pfile) (runstore.FileMeta, error) {
	var r io.Reader
	if pf.data != nil {
		r = bytes.NewReader(pf.data)
	} else {
		f, err := os.Open(pf.path)
		if err != nil {
			return runstore.FileMeta{}, &FolderError{File: pf.name, Err: err}
		}
		defer f.Close()
		r = f
	}
	b, err := files.Put(ctx, r)
	if err != nil {
		return runstore.FileMeta{}, err
	}
	if b.SHA256 != pf.sha || b.Size != pf.size {
		return runstore.FileMeta{}, &FolderError{File: pf.name, Err: fmt.Errorf("changed while it was imported (SHA-256 %s, verified as %s)", short(b.SHA256), short(pf.sha))}
	}
	return runstore.FileMeta{Name: pf.name, ContentType: pf.contentType, Size: b.Size, SHA256: b.SHA256, StorageKey: b.Key}, nil
}
