// Package dynolog reads and writes dyno and engine logs as dyno.Sources:
// Dynojet WinPEP8 / DynoWare RT exports, Power Vision exports and Pro-XY
// files, MegaLogViewer / TunerStudio logs (.msl, CSV), generic CSV and
// DynoAI's canonical CSV (CSVWriter), detected by content. Readers stream:
// memory depends on a line, never on the log's length. Every problem is an
// error that says where (ParseError: file, line, column, byte offset) or
// what is missing (MissingColumnsError).
package dynolog
