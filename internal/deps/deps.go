//go:build deps

// Package deps pins the module's third-party dependencies before the packages that use them land.
package deps

import (
	_ "github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	_ "github.com/mattn/go-sqlite3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/stretchr/testify/require"
	_ "go.uber.org/goleak"
	_ "golang.org/x/net/ipv4"
	_ "golang.org/x/sys/unix"
	_ "gonum.org/v1/gonum/interp"
	_ "gonum.org/v1/gonum/stat"
)
