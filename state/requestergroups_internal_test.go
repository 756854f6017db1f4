package state

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/state/pgtest"
)

// TestRequesterGroupsUpgradeSQLite: a grant stored before migration 0003
// reads back as "groups not recorded" once the store has upgraded the
// schema, and the schema refuses to change recorded groups behind the
// store's back.
func TestRequesterGroupsUpgradeSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkRequesterGroupsUpgrade(t, db, "sqlite", "sqlite:"+path, func(tm time.Time) any { return tm.UnixMicro() })
}

func TestRequesterGroupsUpgradePostgres(t *testing.T) {
	url := pgtest.Schema(t, "elevate_test")
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkRequesterGroupsUpgrade(t, db, "postgres", url, func(tm time.Time) any { return tm })
}

// checkRequesterGroupsUpgrade builds a schema at version 2 on db with one
// grant in it, opens url (which migrates it) and checks the grant and the
// new column.
func checkRequesterGroupsUpgrade(t *testing.T, db *sql.DB, backend, url string, ts func(time.Time) any) {
	ctx := t.Context()
	ms, err := loadMigrations(backend)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 3 || ms[2].name != "0003_requester_groups.sql" {
		t.Fatalf("migration 3 of %s is not 0003_requester_groups.sql", backend)
	}
	q := func(query string) string {
		if backend == "sqlite" {
			return placeholderRE.ReplaceAllString(query, "?$1")
		}
		return query
	}
	exec := func(query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q(query), args...); err != nil {
			t.Fatalf("%.60s…: %v", query, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`)
	for _, m := range ms[:2] {
		exec(m.sql)
		exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, 'x')`, m.version, m.name)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	exec(`INSERT INTO grants (id, version, kind, principal, principal_key, role, policy, status, justification, ticket,
		duration_ns, requested_at, renewals, reason, updated)
		VALUES ('old', 1, 'jit', 'user:alice@example.com', 'user:alice@example.com', 'viewer', 'view', 'active', '', '',
		$1, $2, 0, '', $3)`, int64(time.Hour), ts(at), ts(at))

	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatalf("opening a version 2 %s schema: %v", backend, err)
	}
	defer s.Close()
	var version int
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil || version != len(ms) {
		t.Fatalf("schema version after opening: %d (%v), want %d", version, err, len(ms))
	}
	old, err := s.GetGrant(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if old.RequesterGroups != nil {
		t.Errorf("grant stored before migration 3: requester groups %#v, want not recorded (nil)", old.RequesterGroups)
	}
	// Its updates keep "not recorded".
	old.Status = model.StatusRevoked
	if old, err = s.UpdateGrant(ctx, old, Change{Actor: "x", Action: "revoke"}); err != nil || old.RequesterGroups != nil {
		t.Fatalf("revoking the old grant: %v, requester groups %#v", err, old.RequesterGroups)
	}

	g := model.Grant{ID: "new", Kind: model.KindJIT, Principal: model.MustPrincipal("user:bob@example.com"), Role: "viewer",
		Status: model.StatusPending, RequesterGroups: []model.Principal{model.MustPrincipal("group:eng@example.com")}}
	if _, err := s.CreateGrant(ctx, g, Change{Actor: "x", Action: "request"}); err != nil {
		t.Fatal(err)
	}
	var stored sql.NullString
	if err := db.QueryRowContext(ctx, `SELECT requester_groups FROM grants WHERE id = 'new'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if want := `["group:eng@example.com"]`; stored.String != want {
		t.Errorf("stored requester_groups %q, want %q", stored.String, want)
	}
	for _, stmt := range []string{
		`UPDATE grants SET requester_groups = '["group:admins@example.com"]' WHERE id = 'new'`,
		`UPDATE grants SET requester_groups = NULL WHERE id = 'new'`,
		`UPDATE grants SET requester_groups = '[]' WHERE id = 'old'`,
	} {
		_, err := db.ExecContext(ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), "recorded at creation") {
			t.Errorf("%s: got %v, want the trigger to refuse it", stmt, err)
		}
	}
	// Rewriting the same value is not a change.
	if _, err := db.ExecContext(ctx, `UPDATE grants SET requester_groups = requester_groups`); err != nil {
		t.Errorf("rewriting requester_groups unchanged: %v", err)
	}

	// A grant row with a damaged list fails to read with a clear error.
	exec(fmt.Sprintf(`INSERT INTO grants (id, version, kind, principal, principal_key, role, policy, status, justification, ticket,
		duration_ns, requested_at, renewals, reason, updated, requester_groups)
		VALUES ('bad', 1, 'jit', 'user:alice@example.com', 'user:alice@example.com', 'viewer', 'view', 'pending', '', '',
		0, $1, 0, '', $2, '%s')`, "null"), ts(at), ts(at))
	if _, err := s.GetGrant(ctx, "bad"); err == nil || !strings.Contains(err.Error(), "stored requester groups") {
		t.Errorf("reading a grant whose requester_groups is JSON null: %v, want an error about the stored requester groups", err)
	}
}
