package state_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/state"
	"github.com/elevatehq/elevate/state/pgtest"
	"github.com/elevatehq/elevate/state/storetest"
)

func rewriteAudit(t *testing.T, s state.Store, seq int64, e *state.AuditEvent) {
	t.Helper()
	if err := state.RewriteAudit(t.Context(), s, seq, e); err != nil {
		t.Fatalf("tampering with audit entry %d: %v", seq, err)
	}
}

// openURL opens url for the test and closes it when the test ends.
func openURL(t testing.TB, url string, opts ...state.Option) state.Store {
	t.Helper()
	s, err := state.Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestMemConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		Open: func(t *testing.T, opts ...state.Option) state.Store {
			return openURL(t, "mem:", opts...)
		},
		RewriteAudit: rewriteAudit,
	})
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		Open: func(t *testing.T, opts ...state.Option) state.Store {
			return openURL(t, "sqlite:"+filepath.Join(t.TempDir(), "state.db"), opts...)
		},
		RewriteAudit: rewriteAudit,
	})
}

func TestSQLiteInMemoryConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		Open: func(t *testing.T, opts ...state.Option) state.Store {
			return openURL(t, "sqlite::memory:", opts...)
		},
		RewriteAudit: rewriteAudit,
	})
}

func TestPostgresConformance(t *testing.T) {
	pgtest.DSN(t)
	storetest.Run(t, storetest.Backend{
		Open: func(t *testing.T, opts ...state.Option) state.Store {
			return openURL(t, pgtest.Schema(t, "elevate_test"), opts...)
		},
		RewriteAudit: rewriteAudit,
	})
}

func TestPostgresConcurrentOpensMigrateOnce(t *testing.T) {
	url := pgtest.Schema(t, "elevate_test")
	const replicas = 4
	errs := make(chan error, replicas)
	stores := make(chan state.Store, replicas)
	for range replicas {
		go func() {
			s, err := state.Open(t.Context(), url)
			errs <- err
			stores <- s
		}()
	}
	for range replicas {
		if err := <-errs; err != nil {
			t.Errorf("replica opening at the same time as others: %v", err)
		}
		if s := <-stores; s != nil {
			defer s.Close()
		}
	}
	if t.Failed() {
		return
	}
	s := openURL(t, url)
	var n, max int
	if err := state.SQLDB(s).QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != max {
		t.Fatalf("schema_migrations has %d rows for %d migrations: a migration ran twice", n, max)
	}
}

func TestPostgresRefusesDeletes(t *testing.T) {
	s := openURL(t, pgtest.Schema(t, "elevate_test"))
	checkAppendOnly(t, s)
}

func TestSQLiteRefusesDeletes(t *testing.T) {
	s := openURL(t, "sqlite:"+filepath.Join(t.TempDir(), "state.db"))
	checkAppendOnly(t, s)
}

// checkAppendOnly: the schema itself refuses to delete grants or rewrite
// history, even for code that goes around the store.
func checkAppendOnly(t *testing.T, s state.Store) {
	t.Helper()
	ctx := t.Context()
	g, err := s.CreateGrant(ctx, grant("g1"), state.Change{Actor: "a", Action: "request"})
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"DELETE FROM grants",
		"DELETE FROM grant_events",
		"UPDATE grant_events SET actor = 'mallory'",
		"DELETE FROM audit_events",
		"UPDATE audit_events SET actor = 'mallory'",
	} {
		if _, err := state.SQLDB(s).ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") && !strings.Contains(err.Error(), "never deleted") {
			t.Errorf("%s: got %v, want the append-only trigger to refuse it", stmt, err)
		}
	}
	if _, err := s.GetGrant(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	if res, err := s.VerifyAudit(ctx); err != nil || !res.OK {
		t.Fatalf("audit log after refused tampering: %+v, %v", res, err)
	}
}

func TestSQLiteReopenKeepsDataAndSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := t.Context()
	s, err := state.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.CreateGrant(ctx, grant("g1"), state.Change{Actor: "a", Action: "request"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openURL(t, "sqlite://"+path) // the sqlite:// spelling names the same file
	if got, err := s.GetGrant(ctx, g.ID); err != nil || got.Version != 1 {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}
	db := state.SQLDB(s)
	var mode string
	var fk, migrations int
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&migrations); err != nil {
		t.Fatal(err)
	}
	if want := state.NumMigrations(t, "sqlite"); mode != "wal" || fk != 1 || migrations != want {
		t.Fatalf("journal_mode %q, foreign_keys %d, %d migration rows; want wal, 1, %d", mode, fk, migrations, want)
	}

	// A schema from a newer elevate is refused with a clear message.
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, '0099_future.sql', 'x')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := state.Open(ctx, "sqlite:"+path); err == nil || !strings.Contains(err.Error(), "newer than this elevate") {
		t.Fatalf("opening a database migrated by a newer elevate: %v", err)
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ url, want string }{
		{"", "has no scheme"},
		{"/var/lib/elevate.db", "has no scheme"},
		{"mysql://root@localhost/elevate", `unsupported state URL scheme "mysql"`},
		{"sqlite:", "names no file"},
		{"sqlite:" + dir + "/x.db?_pragma=journal_mode(DELETE)", "options are not accepted"},
		{"sqlite:" + filepath.Join(dir, "missing", "x.db"), "does not exist"},
		{"mem:shared", "takes nothing after the colon"},
	} {
		_, err := state.Open(t.Context(), tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want an error containing %q", tc.url, err, tc.want)
		}
		if err != nil && strings.Contains(tc.want, "scheme") && !strings.Contains(err.Error(), "sqlite:PATH") {
			t.Errorf("Open(%q) = %v: the error should list the accepted forms", tc.url, err)
		}
	}

	// A failing PostgreSQL URL never echoes its password.
	_, err := state.Open(t.Context(), "postgres://elevate:s3cret-pw@127.0.0.1:1/elevate?connect_timeout=2")
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") || !strings.Contains(err.Error(), "127.0.0.1:1/elevate") {
		t.Fatalf("opening an unreachable PostgreSQL: %v; want an error naming the host and not the password", err)
	}
	_, err = state.Open(t.Context(), "postgres://elevate:s3cret-pw@127.0.0.1:5432/elevate?sslmode=bogus")
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("parsing a bad PostgreSQL URL: %v; want an error without the password", err)
	}
}

func grant(id string) model.Grant {
	return model.Grant{ID: id, Kind: model.KindJIT, Principal: model.MustPrincipal("user:alice@example.com"), Role: "db-admin", Status: model.StatusPending}
}

// TestSQLiteConcurrentOpensMigrateOnce opens one new file from several
// pools at once, as several processes would: each must succeed and the
// schema must be migrated once.
func TestSQLiteConcurrentOpensMigrateOnce(t *testing.T) {
	url := "sqlite:" + filepath.Join(t.TempDir(), "state.db")
	const opens = 4
	errs := make(chan error, opens)
	for range opens {
		go func() {
			s, err := state.Open(t.Context(), url)
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	for range opens {
		if err := <-errs; err != nil {
			t.Errorf("opening alongside other openers: %v", err)
		}
	}
	s := openURL(t, url)
	var n int
	if err := state.SQLDB(s).QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if want := state.NumMigrations(t, "sqlite"); n != want {
		t.Fatalf("schema_migrations has %d rows, want %d (one per migration)", n, want)
	}
}
