package state

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"testing"
)

// NumMigrations returns how many migrations backend has.
func NumMigrations(t testing.TB, backend string) int {
	t.Helper()
	ms, err := loadMigrations(backend)
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}

// SQLDB returns the write pool of a SQL store, for tests that inspect or
// damage the database underneath it.
func SQLDB(s Store) *sql.DB { return s.(*sqlStore).w }

// RewriteAudit replaces audit entry seq with e, or deletes it when e is
// nil, behind the store's back: what someone with database access could do.
func RewriteAudit(ctx context.Context, s Store, seq int64, e *AuditEvent) error {
	switch st := s.(type) {
	case *memStore:
		st.db.mu.Lock()
		defer st.db.mu.Unlock()
		i := slices.IndexFunc(st.db.audit, func(x AuditEvent) bool { return x.Seq == seq })
		if i < 0 {
			return fmt.Errorf("no audit entry %d", seq)
		}
		if e == nil {
			st.db.audit = slices.Delete(st.db.audit, i, i+1)
		} else {
			st.db.audit[i] = *e
		}
		return nil
	case *sqlStore:
		// The append-only triggers stop accidents, not someone who owns
		// the database: step around them.
		guards := []string{"DROP TRIGGER IF EXISTS audit_events_append_only_u", "DROP TRIGGER IF EXISTS audit_events_append_only_d"}
		if !st.d.sqlite {
			guards = []string{"ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"}
		}
		for _, g := range guards {
			if _, err := st.w.ExecContext(ctx, g); err != nil {
				return err
			}
		}
		var err error
		if e == nil {
			_, err = st.w.ExecContext(ctx, st.q(`DELETE FROM audit_events WHERE seq = $1`), seq)
		} else {
			_, err = st.w.ExecContext(ctx, st.q(`UPDATE audit_events SET at = $1, actor = $2, action = $3, subject = $4, data = $5,
				prev_hash = $6, hash = $7 WHERE seq = $8`), st.t(e.Time), e.Actor, e.Action, e.Subject, string(e.Data), e.PrevHash, e.Hash, seq)
		}
		return err
	}
	return fmt.Errorf("RewriteAudit: unknown store type %T", s)
}
