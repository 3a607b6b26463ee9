// Command keygen prints new DynoAI API keys with their key ids.
//
// Usage:
//
//	go run ./examples/keygen [-n count]
//
// Each line is a key and its id, separated by a tab. Put the key in the
// client's X-API-Key header and one key per line in the server's keys file
// (API_KEYS_FILE); the id is what the server logs for requests made with it.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/dynoai/dynoai/authkeys"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "keygen:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 1, fmt.Sprintf("number of keys to generate (1..%d)", authkeys.MaxGenerate))
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (usage: keygen [-n count])", fs.Arg(0))
	}
	keys, err := authkeys.GenerateN(*n)
	if err != nil {
		return fmt.Errorf("-n %d: %w", *n, err)
	}
	for _, k := range keys {
		if _, err := fmt.Fprintf(stdout, "%s\t%s\n", k, authkeys.IDOf(k)); err != nil {
			return err
		}
	}
	return nil
}
