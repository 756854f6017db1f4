package state

import (
	"strings"
	"testing"
)

// TestMigrationsInStep: both SQL backends have the same numbered
// migrations, so a schema change cannot land in one and be forgotten in
// the other.
func TestMigrationsInStep(t *testing.T) {
	lite, err := loadMigrations("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	pg, err := loadMigrations("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) == 0 || len(lite) != len(pg) {
		t.Fatalf("%d SQLite migrations and %d PostgreSQL migrations: add each schema change to both", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].name != pg[i].name {
			t.Errorf("migration %d is %s for SQLite but %s for PostgreSQL", i+1, lite[i].name, pg[i].name)
		}
		for _, table := range []string{"grants", "grant_approvals", "grant_events", "bindings", "audit_events", "audit_head", "leases", "audit_cursors",
			"incidents", "declarations", "alerts", "audit_source_status"} {
			if strings.Contains(lite[i].sql, "CREATE TABLE "+table+" ") != strings.Contains(pg[i].sql, "CREATE TABLE "+table+" ") {
				t.Errorf("migration %s creates table %s in one backend only", lite[i].name, table)
			}
		}
	}
}
