// Package dynolog reads and writes dyno and engine logs as dyno.Sources:
// Dynojet WinPEP8 / DynoWare RT exports, Power Vision exports and Pro-XY
// files, MegaLogViewer / TunerStudio logs (.msl and CSV text, and the
// binary MLVLG .mlg, versions 1 and 2), HP Tuners VCM Scanner CSV
// exports, JetDrive CSV, generic CSV and DynoAI's canonical CSV
// (CSVWriter). The format is told from the content, not the extension
// (ReadOptions.Format forces one).
//
// A Reader judges a log before it reads it. From a bounded prefix
// (ReadOptions.PrefixRows rows, at most 8 MiB, held once and then
// replayed) it matches columns to channels by name, infers units the
// header does not state or states wrongly (°C vs °F vs K, kPa vs psi vs
// bar, absolute vs gauge, λ vs AFR, rpm vs krpm), decides each column's
// health (flat, a sentinel, pegged lean, a probe in free air, an input
// with no sensor) and picks, for every channel, the best live column. Its
// ChannelReport says what it chose and why, and what it did not use; a
// MissingColumnsError carries it too. ReadOptions.Map and ChannelUnits
// override any of it.
//
// Readers stream: past the prefix, memory depends on a line, never on the
// log's length. Every problem is an error that says where (ParseError:
// file, line, column, byte offset) or what is missing
// (MissingColumnsError).
package dynolog
