package authkeys

import (
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// keySet is an immutable set of key digests. Stores swap whole sets
// atomically; nothing mutates a set once it is published.
type keySet struct {
	digests []Digest
	ids     []KeyID
}

var emptySet = &keySet{}

// newKeySet builds a set from keys, dropping duplicates.
func newKeySet(keys []string) *keySet {
	s := &keySet{digests: make([]Digest, 0, len(keys)), ids: make([]KeyID, 0, len(keys))}
	seen := make(map[Digest]bool, len(keys))
	for _, k := range keys {
		d := DigestOf(k)
		if seen[d] {
			continue
		}
		seen[d] = true
		s.digests = append(s.digests, d)
		s.ids = append(s.ids, d.ID())
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
func (s *keySet) verify(presented string) (KeyID, error) {
	if presented == "" {
		return "", ErrMissing
	}
	if len(presented) > MaxKeyLen {
		if len(s.digests) == 0 {
			return "", ErrNoKeys
		}
		return "", ErrInvalid
	}
	d := DigestOf(presented)
	return s.verifyDigest(&d)
}

func (s *keySet) verifyDigest(d *Digest) (KeyID, error) {
	if len(s.digests) == 0 {
		return "", ErrNoKeys
	}
	i, ok := s.match(d)
	if !ok {
		return "", ErrInvalid
	}
	return s.ids[i], nil
}

// ParseList splits a comma-separated key list (the API_KEYS format): each
// piece is trimmed of spaces and tabs, empty pieces are dropped. A piece with
// an inner space or a character outside printable ASCII is an error naming
// its 1-based position in the list and its byte offset in s.
func ParseList(s string) ([]string, error) {
	var keys []string
	off := 0
	for n, piece := range strings.Split(s, ",") {
		start := off
		off += len(piece) + 1
		trimmed := strings.Trim(piece, " \t\r\n")
		if trimmed == "" {
			continue
		}
		lead := len(piece) - len(strings.TrimLeft(piece, " \t\r\n"))
		if i, r, bad := badKeyChar(trimmed); bad {
			return nil, &ParseError{Entry: n + 1, Offset: start + lead + i, Char: r}
		}
		if len(trimmed) > MaxKeyLen {
			return nil, &ParseError{Entry: n + 1, Offset: start + lead, Reason: tooLong}
		}
		keys = append(keys, trimmed)
	}
	return keys, nil
}

// MaxFileBytes bounds the size of a keys file.
const MaxFileBytes = 1 << 20

// ParseFile parses the contents of a keys file: an optional UTF-8 byte-order
// mark, then one key per line (LF or CRLF). Each line is trimmed; blank lines
// and lines starting with '#' after trimming are skipped. Any other line must
// be a single key of printable ASCII without spaces; anything else is a
// *ParseError with the line, column and byte offset of the offending byte.
func ParseFile(data []byte) ([]string, error) {
	if len(data) > MaxFileBytes {
		return nil, &ParseError{Offset: MaxFileBytes, Reason: fmt.Sprintf("keys file larger than %d bytes", MaxFileBytes)}
	}
	off := 0
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		off = 3
	}
	var keys []string
	line := 0
	for off <= len(data) {
		line++
		end := off
		for end < len(data) && data[end] != '\n' {
			end++
		}
		raw := string(data[off:end])
		trimmed := strings.Trim(raw, " \t\r\v\f")
		if trimmed != "" && trimmed[0] != '#' {
			lead := len(raw) - len(strings.TrimLeft(raw, " \t\r\v\f"))
			if i, r, bad := badKeyChar(trimmed); bad {
				col := utf8.RuneCountInString(raw[:lead+i]) + 1
				return nil, &ParseError{Line: line, Column: col, Offset: off + lead + i, Char: r}
			}
			if len(trimmed) > MaxKeyLen {
				col := utf8.RuneCountInString(raw[:lead]) + 1
				return nil, &ParseError{Line: line, Column: col, Offset: off + lead, Reason: tooLong}
			}
			keys = append(keys, trimmed)
		}
		if end == len(data) {
			break
		}
		off = end + 1
	}
	return keys, nil
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
