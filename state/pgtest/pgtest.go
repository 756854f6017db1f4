// Package pgtest gives each test a PostgreSQL schema of its own in the
// database that ELEVATE_TEST_POSTGRES names (.ci/run sets it), so that
// parallel tests and reused CI machines never see each other's tables.
// Tests that need PostgreSQL are skipped, saying so, when it is unset.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// EnvVar is the environment variable that holds the test database URL.
const EnvVar = "ELEVATE_TEST_POSTGRES"

// Configured reports whether a test database is configured.
func Configured() bool { return os.Getenv(EnvVar) != "" }

// DSN returns the test database URL, or skips the test when none is
// configured. A URL that is not postgres:// fails the test.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvVar)
	if dsn == "" {
		t.Skip(EnvVar + " not set: PostgreSQL tests skipped (.ci/run sets it)")
	}
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		t.Fatalf("%s must be a postgres:// URL, such as postgres://elevate:elevate-ci@127.0.0.1:5432/elevate_test?sslmode=disable", EnvVar)
	}
	return dsn
}

// Schema creates a schema named prefix plus a random suffix in the test
// database, drops it when the test ends, and returns the database URL with
// search_path set to it. It skips the test like DSN.
func Schema(t testing.TB, prefix string) string {
	t.Helper()
	dsn := DSN(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := prefix + "_" + hex.EncodeToString(b[:])
	exec := func(sql string) {
		t.Helper()
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connecting to %s: %v", EnvVar, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE SCHEMA " + schema)
	t.Cleanup(func() { exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parsing %s: %v", EnvVar, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
