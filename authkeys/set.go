package authkeys

import (
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// keySet is an immutable set of key digests with their identities. Stores
// swap whole sets atomically; nothing mutates a set once it is published.
type keySet struct {
	digests []Digest
	idents  []Identity
}

var emptySet = &keySet{}

// newKeySet builds a set from entries, dropping repeated keys (the first
// entry of a key wins; parsers refuse conflicting repeats before this).
func newKeySet(entries []Entry) *keySet {
	s := &keySet{digests: make([]Digest, 0, len(entries)), idents: make([]Identity, 0, len(entries))}
	seen := make(map[Digest]bool, len(entries))
	for _, e := range entries {
		d := DigestOf(e.Key)
		if seen[d] {
			continue
		}
		seen[d] = true
		s.digests = append(s.digests, d)
		s.idents = append(s.idents, e.identity(d.ID()))
	}
	return s
}

// match compares d with every digest of the set and never stops early: the
// work done depends only on the number of keys, not on their contents or on
// which one (if any) matches. Words are compared with XOR and OR and the
// result selected arithmetically, with no data-dependent branch.
func (s *keySet) match(d *Digest) (int, bool) {
	w0, w1, w2, w3 := words(d)
	found, idx := 0, 0
	for i := range s.digests {
		a0, a1, a2, a3 := words(&s.digests[i])
		x := (a0 ^ w0) | (a1 ^ w1) | (a2 ^ w2) | (a3 ^ w3)
		eq := int(((x | -x) >> 63) ^ 1) // 1 when x == 0, else 0
		idx = subtle.ConstantTimeSelect(eq, i, idx)
		found |= eq
	}
	return idx, found == 1
}

func words(d *Digest) (uint64, uint64, uint64, uint64) {
	return binary.LittleEndian.Uint64(d[0:]), binary.LittleEndian.Uint64(d[8:]),
		binary.LittleEndian.Uint64(d[16:]), binary.LittleEndian.Uint64(d[24:])
}

// verify is the common body of every store's Verify.
func (s *keySet) verify(presented string) (Identity, error) {
	if presented == "" {
		return Identity{}, ErrMissing
	}
	if len(presented) > MaxKeyLen {
		if len(s.digests) == 0 {
			return Identity{}, ErrNoKeys
		}
		return Identity{}, ErrInvalid
	}
	d := DigestOf(presented)
	return s.verifyDigest(&d)
}

func (s *keySet) verifyDigest(d *Digest) (Identity, error) {
	if len(s.digests) == 0 {
		return Identity{}, ErrNoKeys
	}
	i, ok := s.match(d)
	if !ok {
		return Identity{}, ErrInvalid
	}
	return s.idents[i], nil
}

// MinKeyLen is the shortest key accepted, in bytes. Generated keys have 50.
const MinKeyLen = 24

// entryProblem locates a problem in one entry: a byte offset in the entry
// and either a character that may not appear or a reason.
type entryProblem struct {
	off    int
	char   rune
	reason string
}

// parseEntry reads "<key> [tenant=<tenant>] [scopes=<scope>+...]": fields
// separated by spaces or tabs, the key first. It never puts the key or any
// part of it in a problem's reason.
func parseEntry(text string) (Entry, *entryProblem) {
	var e Entry
	type field struct {
		off int
		s   string
	}
	var fields []field
	for i := 0; i < len(text); {
		if text[i] == ' ' || text[i] == '\t' {
			i++
			continue
		}
		j := i
		for j < len(text) && text[j] != ' ' && text[j] != '\t' {
			j++
		}
		fields = append(fields, field{i, text[i:j]})
		i = j
	}
	if len(fields) == 0 {
		return e, &entryProblem{reason: "no key"}
	}
	key := fields[0]
	if i, r, bad := badKeyChar(key.s); bad {
		return e, &entryProblem{off: key.off + i, char: r}
	}
	switch {
	case len(key.s) > MaxKeyLen:
		return e, &entryProblem{off: key.off, reason: tooLong}
	case len(key.s) < MinKeyLen:
		return e, &entryProblem{off: key.off, reason: fmt.Sprintf(
			"key of %d characters is too short: keys need at least %d (make them with examples/keygen)", len(key.s), MinKeyLen)}
	}
	e.Key = key.s
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		name, val, ok := strings.Cut(f.s, "=")
		if i, r, bad := badKeyChar(f.s); bad {
			return e, &entryProblem{off: f.off + i, char: r}
		}
		if !ok || (name != "tenant" && name != "scopes") {
			return e, &entryProblem{off: f.off, reason: "want tenant=<name> or scopes=<scope>+... after the key (one key per line; comments on lines of their own)"}
		}
		if seen[name] {
			return e, &entryProblem{off: f.off, reason: name + " given twice"}
		}
		seen[name] = true
		switch name {
		case "tenant":
			if !ValidTenant(val) {
				return e, &entryProblem{off: f.off, reason: fmt.Sprintf("tenant %q: want 1 to 64 of [A-Za-z0-9._:-], starting with a letter or digit", val)}
			}
			e.Tenant = val
		case "scopes":
			sc, err := ParseScopes(val)
			if err != nil {
				return e, &entryProblem{off: f.off, reason: err.Error()}
			}
			e.Scopes = sc
		}
	}
	return e, nil
}

// ParseEntry reads one entry of the line format: the key, then optionally
// tenant=<tenant> and scopes=<scope>[+<scope>...], separated by spaces:
//
//	dynoai_0Tq...Zw tenant=shop-7 scopes=read+analyze
//
// A key is at least MinKeyLen and at most MaxKeyLen printable ASCII
// characters without spaces. Without a tenant the key is its own tenant
// (OwnTenant); without scopes it has DefaultScopes. Problems are a
// *ParseError giving the byte offset; it never contains the key.
func ParseEntry(s string) (Entry, error) {
	e, p := parseEntry(s)
	if p != nil {
		return Entry{}, &ParseError{Offset: p.off, Char: p.char, Reason: p.reason}
	}
	return e, nil
}

// checkRepeats refuses a key given twice with different tenants or scopes
// (which one would apply?). Identical repeats are harmless.
func checkRepeats(entries []Entry, where func(i int) string) error {
	first := make(map[string]int, len(entries))
	for i, e := range entries {
		j, ok := first[e.Key]
		if !ok {
			first[e.Key] = i
			continue
		}
		if entries[j].Tenant != e.Tenant || entries[j].Scopes != e.Scopes {
			return fmt.Errorf("authkeys: %s repeats the key of %s with another tenant or scopes", where(i), where(j))
		}
	}
	return nil
}

// ParseList splits a comma-separated list of entries (the API_KEYS
// format): each entry is a key, optionally followed by tenant= and scopes=
// as in a keys file line (see ParseEntry), for example
//
//	API_KEYS=dynoai_aaa...,dynoai_bbb... tenant=shop-2 scopes=read
//
// Entries are trimmed of spaces and tabs; empty entries are dropped. A
// malformed entry is a *ParseError naming its 1-based position in the list
// and the byte offset in s; it never contains the key.
func ParseList(s string) ([]Entry, error) {
	var entries []Entry
	off := 0
	for n, piece := range strings.Split(s, ",") {
		start := off
		off += len(piece) + 1
		if strings.Trim(piece, " \t\r\n") == "" {
			continue
		}
		e, p := parseEntry(strings.TrimRight(piece, "\r\n"))
		if p != nil {
			return nil, &ParseError{Entry: n + 1, Offset: start + p.off, Char: p.char, Reason: p.reason}
		}
		entries = append(entries, e)
	}
	if err := checkRepeats(entries, func(i int) string { return fmt.Sprintf("entry %d", i+1) }); err != nil {
		return nil, err
	}
	return entries, nil
}

// MaxFileBytes bounds the size of a keys file.
const MaxFileBytes = 1 << 20

// The lines that frame a keys file written whole (see ParseFile).
const (
	FileHeader  = "# dynoai-keys v1"
	FileTrailer = "# end"
)

// ParseFile parses the contents of a keys file: an optional UTF-8 byte-order
// mark, then one entry per line (LF or CRLF; see ParseEntry for the entry
// format). Each line is trimmed; blank lines and lines starting with '#'
// after trimming are comments.
//
// A file is applied only when it parses whole:
//
//   - every entry line ends with a newline, so a file cut off in the middle
//     of its last line is refused;
//   - a file whose first line is FileHeader ("# dynoai-keys v1", as
//     examples/keygen writes it) must have FileTrailer ("# end") as its last
//     non-blank line, so a file cut off at any point is refused;
//   - a key shorter than MinKeyLen, or given twice with different tenants
//     or scopes, is refused.
//
// Problems are a *ParseError with the line, column and byte offset; they
// never contain a key.
func ParseFile(data []byte) ([]Entry, error) {
	if len(data) > MaxFileBytes {
		return nil, &ParseError{Offset: MaxFileBytes, Reason: fmt.Sprintf("keys file larger than %d bytes", MaxFileBytes)}
	}
	off := 0
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		off = 3
	}
	var (
		entries   []Entry
		lines     []int // line of each entry
		framed    bool  // the header was seen
		ended     int   // line of the trailer, 0 before it
		firstText = true
	)
	line := 0
	for off <= len(data) {
		line++
		end := off
		for end < len(data) && data[end] != '\n' {
			end++
		}
		raw := string(data[off:end])
		trimmed := strings.Trim(raw, " \t\r\v\f")
		lead := len(raw) - len(strings.TrimLeft(raw, " \t\r\v\f"))
		col := func(i int) int { return utf8.RuneCountInString(raw[:i]) + 1 }
		fail := func(at int, char rune, reason string) error {
			return &ParseError{Line: line, Column: col(at), Offset: off + at, Char: char, Reason: reason}
		}
		switch {
		case trimmed == "":
		case end == len(data) && trimmed != FileTrailer:
			// Whatever this last line is (an entry, a comment, the header), a
			// writer that finished would have ended it with a newline.
			return nil, fail(lead, 0, "the last line has no newline: the file looks cut off (end every line with a newline)")
		case ended > 0:
			return nil, fail(lead, 0, fmt.Sprintf("text after the %q line (line %d)", FileTrailer, ended))
		case trimmed == FileHeader && firstText:
			framed = true
		case trimmed == FileTrailer && framed:
			ended = line
		case trimmed[0] == '#':
		default:
			e, p := parseEntry(trimmed)
			if p != nil {
				return nil, fail(lead+p.off, p.char, p.reason)
			}
			entries = append(entries, e)
			lines = append(lines, line)
		}
		if trimmed != "" {
			firstText = false
		}
		if end == len(data) {
			break
		}
		off = end + 1
	}
	if framed && ended == 0 {
		return nil, &ParseError{Offset: len(data), Reason: fmt.Sprintf(
			"the file starts with %q but has no %q line: it was cut off or not written whole", FileHeader, FileTrailer)}
	}
	if err := checkRepeats(entries, func(i int) string { return fmt.Sprintf("line %d", lines[i]) }); err != nil {
		return nil, err
	}
	return entries, nil
}

// MaxKeyLen is the longest key accepted, in bytes. Longer keys are refused
// when parsed and never verify, so a huge presented key costs no hashing.
const MaxKeyLen = 512

var tooLong = fmt.Sprintf("key longer than %d bytes", MaxKeyLen)

// badKeyChar finds the first byte of key that may not appear in a key:
// anything outside printable ASCII (0x21..0x7E). It returns the byte offset
// and the rune found there (utf8.RuneError for invalid UTF-8).
func badKeyChar(key string) (int, rune, bool) {
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x21 || c > 0x7E {
			r, _ := utf8.DecodeRuneInString(key[i:])
			return i, r, true
		}
	}
	return 0, 0, false
}

// ParseError reports a malformed key list or keys file. It never contains
// the key itself, only where the problem is.
type ParseError struct {
	Path   string // file name, when parsing a file
	Line   int    // 1-based line in a file, 0 for a list
	Column int    // 1-based column (in characters) in that line
	Entry  int    // 1-based position in a comma-separated list
	Offset int    // byte offset from the start of the input
	Char   rune   // the offending character
	Reason string // set instead of Char for whole-input problems
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("authkeys: ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	switch {
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d, column %d (byte offset %d): ", e.Line, e.Column, e.Offset)
	case e.Entry > 0:
		fmt.Fprintf(&b, "entry %d (byte offset %d): ", e.Entry, e.Offset)
	default:
		fmt.Fprintf(&b, "byte offset %d: ", e.Offset)
	}
	if e.Reason != "" {
		b.WriteString(e.Reason)
		return b.String()
	}
	fmt.Fprintf(&b, "character %U is not allowed in a key (keys are printable ASCII without spaces)", e.Char)
	return b.String()
}
