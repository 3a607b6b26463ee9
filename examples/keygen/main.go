// Command keygen makes new DynoAI API keys in the keys file format.
//
// Usage:
//
//	go run ./examples/keygen [-n count] [-tenant name] [-scopes read+analyze+apply] [-file path]
//
// Without -file it prints a complete keys file: the "# dynoai-keys v1"
// header, for each key a comment with its key id and a line
//
//	<key> tenant=<tenant> scopes=<scopes>
//
// and the "# end" trailer, so that "keygen > keys.txt" makes a file the
// server (API_KEYS_FILE) applies only when it is whole. Without -tenant each
// key is its own tenant; without -scopes a key has read, analyze and apply.
//
// With -file it adds the new keys to that keys file, atomically (a new file
// is written beside it, synced and renamed over it): the file must parse
// whole first; a file without the header gets one. The server's watcher
// picks the change up; the key id is what the server logs for requests made
// with the key. The keys themselves are printed on stdout only without
// -file; with -file only their ids are.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dynoai/dynoai/authkeys"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr, time.Now); err != nil {
		fmt.Fprintln(os.Stderr, "keygen:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer, now func() time.Time) error {
	fl := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fl.SetOutput(stderr)
	n := fl.Int("n", 1, fmt.Sprintf("number of keys to generate (1..%d)", authkeys.MaxGenerate))
	tenant := fl.String("tenant", "", "tenant owning what the keys make (default: each key its own tenant)")
	scopes := fl.String("scopes", "", "scopes joined by +: read, analyze, apply, admin (default read+analyze+apply)")
	file := fl.String("file", "", "add the keys to this keys file instead of printing a new file")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (usage: keygen [-n count] [-tenant name] [-scopes list] [-file path])", fl.Arg(0))
	}
	if *tenant != "" && !authkeys.ValidTenant(*tenant) {
		return fmt.Errorf("-tenant %q: want 1 to 64 of [A-Za-z0-9._:-], starting with a letter or digit", *tenant)
	}
	var sc authkeys.Scopes
	if *scopes != "" {
		var err error
		if sc, err = authkeys.ParseScopes(*scopes); err != nil {
			return fmt.Errorf("-scopes: %w", err)
		}
	}
	keys, err := authkeys.GenerateN(*n)
	if err != nil {
		return fmt.Errorf("-n %d: %w", *n, err)
	}
	var block strings.Builder
	made := now().UTC().Format(time.RFC3339)
	for _, k := range keys {
		e := authkeys.Entry{Key: k, Tenant: *tenant, Scopes: sc}
		if e.Tenant == "" {
			e.Tenant = authkeys.OwnTenant(authkeys.IDOf(k))
		}
		if e.Scopes == 0 {
			e.Scopes = authkeys.DefaultScopes
		}
		fmt.Fprintf(&block, "# key id %s, made %s\n%s\n", authkeys.IDOf(k), made, e)
	}
	if *file == "" {
		_, err := io.WriteString(stdout, authkeys.FileHeader+"\n"+block.String()+authkeys.FileTrailer+"\n")
		return err
	}
	if err := addToFile(*file, block.String()); err != nil {
		return err
	}
	for _, k := range keys {
		fmt.Fprintf(stdout, "added key id %s to %s\n", authkeys.IDOf(k), *file)
	}
	return nil
}

// addToFile inserts block before the trailer of the keys file at path (a
// new framed file if there is none), after checking the file parses whole,
// and replaces the file atomically.
func addToFile(path, block string) error {
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	case err != nil:
		return err
	}
	if _, err := authkeys.ParseFile(old); err != nil {
		return fmt.Errorf("%s does not parse whole; not touching it: %w", path, err)
	}
	text := strings.TrimPrefix(string(old), "\uFEFF")
	trimmed := strings.TrimRight(text, " \t\r\n")
	switch {
	case strings.HasSuffix(trimmed, "\n"+authkeys.FileTrailer) || trimmed == authkeys.FileTrailer:
		text = strings.TrimSuffix(trimmed, authkeys.FileTrailer)
	case strings.HasPrefix(strings.TrimLeft(text, " \t\r\n"), authkeys.FileHeader):
		return fmt.Errorf("%s has its header but no %q line", path, authkeys.FileTrailer)
	default:
		text = authkeys.FileHeader + "\n" + text
	}
	next := text + block + authkeys.FileTrailer + "\n"
	if _, err := authkeys.ParseFile([]byte(next)); err != nil {
		return fmt.Errorf("the new %s would not parse: %w", path, err)
	}
	mode := fs.FileMode(0o600)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keygen-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(next); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
