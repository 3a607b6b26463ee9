// Package dynoai3import reads the run folders of the predecessor, DynoAI_3,
// into a run store, so a shop moving over keeps its history: each folder
// becomes one run with source "import", its files stored with checksums,
// its applied and rolled-back tables as apply records.
//
// Every family of folder the predecessor wrote is recognised (see Family):
// the toolkit's --outdir folders with their manifest.json, the API's
// outputs/<uuid> folders with their uploads, the Jetstream RunManager's
// runs/run_<id> folders, the JetDrive script's and the AutoTune workflow's
// runs/<id> folders, the transient-fuel outputs, and folders whose run died
// before it wrote a manifest.
//
// The rules, after the specification of the predecessor's run folders:
//   - A manifest's registered outputs are verified (size, then SHA-256)
//     before anything is stored; a folder that fails, or whose manifest
//     does not parse, is reported and skipped: nothing of it is stored.
//     Unregistered files are imported by name and flagged as not vouched
//     for by the manifest.
//   - The predecessor's status maps to a final status: success is
//     completed; error, partial and a missing manifest are failed with the
//     predecessor's message kept verbatim.
//   - Each run is imported in one transaction (runstore.Importer), keyed
//     by the predecessor's run id and its input's SHA-256, so importing a
//     folder twice adds nothing, and a crash leaves whole runs only.
//   - The input log is found where the family keeps it (the API's
//     uploads/<uuid>, the RunManager's input/), else by SHA-256 in the
//     directories Options.InputDirs names, also matching a manifest that
//     hashed the file's CRLF form (old Windows runs).
//   - Timestamps in the three styles the predecessor wrote are read as
//     UTC.
//
// Import is the whole job; Scan only classifies, for a dry run of the
// layout. examples/dbtool import-dynoai3 is the command.
package dynoai3import
