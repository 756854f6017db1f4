package state

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/elevatehq/elevate/model"
)

// BindingScopeLister is implemented by every store of this package: it
// lists the scopes that hold binding records without reading the records,
// which a caller that only needs the scopes (the reconcile engine's full
// pass) would otherwise hold in memory all at once.
type BindingScopeLister interface {
	// BindingScopes returns every scope holding at least one binding
	// record, once each, ordered by cloud and then scope.
	BindingScopes(ctx context.Context) ([]model.ScopeKey, error)
}

var (
	_ BindingScopeLister = (*sqlStore)(nil)
	_ BindingScopeLister = (*memStore)(nil)
)

// BindingScopes implements BindingScopeLister.
func (s *sqlStore) BindingScopes(ctx context.Context) ([]model.ScopeKey, error) {
	var out []model.ScopeKey
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT cloud, scope FROM bindings ORDER BY cloud, scope`)
		if err != nil {
			return fmt.Errorf("listing binding scopes: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var k model.ScopeKey
			if err := rows.Scan(&k.Cloud, &k.Scope); err != nil {
				return fmt.Errorf("listing binding scopes: %w", err)
			}
			out = append(out, k)
		}
		return rows.Err()
	})
	return out, err
}

// BindingScopes implements BindingScopeLister.
func (s *memStore) BindingScopes(ctx context.Context) ([]model.ScopeKey, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	seen := make(map[model.ScopeKey]bool)
	var out []model.ScopeKey
	for _, r := range s.db.bindings {
		if k := r.Binding.Target.ScopeKey(); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b model.ScopeKey) int {
		return cmp.Or(cmp.Compare(a.Cloud, b.Cloud), cmp.Compare(a.Scope, b.Scope))
	})
	return out, nil
}
