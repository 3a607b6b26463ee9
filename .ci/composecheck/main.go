// Command composecheck loads deploy/compose.yaml with compose-go, the
// loader docker compose itself uses, so that CI (which has no Docker daemon)
// catches what `docker compose config` would refuse: keys the Compose
// Specification does not have, wrong types, broken interpolation, unknown
// services in depends_on. Variables come from the given env file only, as
// `docker compose --env-file` reads it; the machine's environment is
// ignored, so the result does not depend on where CI runs.
//
//	go run . ../../deploy/compose.yaml ../../deploy/.env.example
//
// It is its own module so that the server's go.mod does not carry
// compose-go's dependencies.
package main

import (
	"context"
	"fmt"
	"os"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: composecheck COMPOSE_FILE ENV_FILE")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions([]string{os.Args[1]}, cli.WithEnvFiles(os.Args[2]), cli.WithDotEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
	names := make([]string, 0, len(p.Services))
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := p.Services[n]
		fmt.Printf("  %-10s %-28s healthcheck=%-5v depends_on=%d volumes=%d\n", n, s.Image, s.HealthCheck != nil, len(s.DependsOn), len(s.Volumes))
	}
	fmt.Printf("%s: project %q, %d services, %d volumes: valid\n", os.Args[1], p.Name, len(p.Services), len(p.Volumes))
}
