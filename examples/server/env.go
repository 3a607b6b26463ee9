package main

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// EnvFileError locates a malformed line of a .env file.
type EnvFileError struct {
	File   string
	Line   int
	Column int
	Reason string
}

func (e *EnvFileError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Reason)
}

// parseEnvFile reads a .env file: KEY=VALUE lines, optionally preceded by
// "export ", blank lines and lines starting with '#'. An unquoted value
// ends at whitespace followed by '#' (an inline comment) and is trimmed; a
// value in double quotes may contain \" \\ \n \t escapes; a value in single
// quotes is literal. Anything else, and a key given twice, is an error
// naming the line and column.
func parseEnvFile(name string, data []byte) (map[string]string, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	line := 0
	for sc.Scan() {
		line++
		raw := strings.TrimSuffix(sc.Text(), "\r")
		bad := func(col int, format string, a ...any) error {
			return &EnvFileError{File: name, Line: line, Column: col, Reason: fmt.Sprintf(format, a...)}
		}
		s := strings.TrimLeft(raw, " \t")
		col := len(raw) - len(s) + 1
		if s == "" || s[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(s, "export "); ok {
			col += len(s) - len(rest)
			s = strings.TrimLeft(rest, " \t")
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, bad(col, "want KEY=VALUE")
		}
		key := strings.TrimRight(s[:eq], " \t")
		for i := 0; i < len(key); i++ {
			c := key[i]
			if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
				return nil, bad(col+i, "invalid character %q in variable name", c)
			}
		}
		if _, dup := out[key]; dup {
			return nil, bad(col, "%s is set twice", key)
		}
		vcol := col + eq + 1
		v := strings.TrimLeft(s[eq+1:], " \t")
		vcol += len(s[eq+1:]) - len(v)
		val, err := envValue(v)
		if err != "" {
			return nil, bad(vcol, "%s: %s", key, err)
		}
		out[key] = val
	}
	if err := sc.Err(); err != nil {
		return nil, &EnvFileError{File: name, Line: line + 1, Column: 1, Reason: err.Error()}
	}
	return out, nil
}

func envValue(v string) (string, string) {
	if v == "" || v[0] == '#' {
		return "", "" // KEY=  # comment
	}
	switch v[0] {
	case '"':
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			c := v[i]
			switch {
			case c == '\\' && i+1 < len(v):
				i++
				switch v[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case '"', '\\':
					b.WriteByte(v[i])
				default:
					return "", fmt.Sprintf("unknown escape \\%c", v[i])
				}
			case c == '"':
				if rest := strings.TrimSpace(v[i+1:]); rest != "" && rest[0] != '#' {
					return "", "text after the closing quote"
				}
				return b.String(), ""
			default:
				b.WriteByte(c)
			}
		}
		return "", "unterminated double quote"
	case '\'':
		end := strings.IndexByte(v[1:], '\'')
		if end < 0 {
			return "", "unterminated single quote"
		}
		if rest := strings.TrimSpace(v[end+2:]); rest != "" && rest[0] != '#' {
			return "", "text after the closing quote"
		}
		return v[1 : end+1], ""
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = v[:i]
	}
	if i := strings.Index(v, "\t#"); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v), ""
}
