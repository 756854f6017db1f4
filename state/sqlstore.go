package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unique"

	"github.com/elevatehq/elevate/model"
)

// dialect is what differs between the SQL backends. Queries are written
// with PostgreSQL's $N placeholders; SQLite gets them as ?N.
type dialect struct {
	name string
	// sqlite rewrites placeholders and stores times as Unix microseconds.
	sqlite bool
	// forUpdate and forShare are row-lock clauses (empty for SQLite, whose
	// write transactions already hold the database's single write lock).
	forUpdate, forShare string
	// readTx are the options of read transactions (a consistent snapshot).
	readTx *sql.TxOptions
	// isUnique reports whether err is a unique-constraint violation.
	isUnique func(error) bool
}

// sqlStore is the SQLite and PostgreSQL store.
type sqlStore struct {
	// w runs write transactions; r runs reads. For PostgreSQL and for an
	// in-memory SQLite database they are the same pool; for a SQLite file w
	// has a single connection, so writers queue in Go rather than spin on
	// SQLITE_BUSY.
	w, r  *sql.DB
	d     *dialect
	now   func() time.Time
	fence *Fence
	close func() error
}

var rebindCache sync.Map

var placeholderRE = regexp.MustCompile(`\$(\d+)`)

// q adapts a query to the dialect.
func (s *sqlStore) q(query string) string {
	if !s.d.sqlite {
		return query
	}
	if v, ok := rebindCache.Load(query); ok {
		return v.(string)
	}
	out := placeholderRE.ReplaceAllString(query, "?$1")
	rebindCache.Store(query, out)
	return out
}

// t converts a time to a query argument: NULL for the zero time.
func (s *sqlStore) t(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = normTime(t)
	if s.d.sqlite {
		return t.UnixMicro()
	}
	return t
}

// timeCol scans a time column of either backend.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = normTime(v)
	default:
		return fmt.Errorf("scanning a time column: unexpected %T", src)
	}
	return nil
}

func (s *sqlStore) WithFence(f Fence) Store {
	c := *s
	c.fence = &f
	return &c
}

func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("pinging %s state store: %w", s.d.name, err)
	}
	return nil
}

func (s *sqlStore) Close() error { return s.close() }

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// write runs fn in a write transaction, after checking the fence if the
// store has one. The fence check holds a shared lock on the lease row in
// PostgreSQL until commit, so a takeover waits for the write or the write
// sees the takeover.
func (s *sqlStore) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.writeUnfenced(ctx, func(tx *sql.Tx) error {
		if f := s.fence; f != nil {
			var holder string
			var token int64
			err := tx.QueryRowContext(ctx, s.q(`SELECT holder, token FROM leases WHERE name = $1`+s.d.forShare), f.Lease).Scan(&holder, &token)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("checking fence on lease %s: %w", f.Lease, err)
			}
			if holder != f.Holder || token != f.Token || holder == "" {
				return fencedError(*f, holder, token)
			}
		}
		return fn(tx)
	})
}

func (s *sqlStore) writeUnfenced(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning %s transaction: %w", s.d.name, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing %s transaction: %w", s.d.name, err)
	}
	return nil
}

// read runs fn in a read transaction, so multi-query reads see one snapshot.
func (s *sqlStore) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, s.d.readTx)
	if err != nil {
		return fmt.Errorf("beginning %s read transaction: %w", s.d.name, err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// Grants.

const grantCols = `id, version, kind, principal, role, policy, status, justification, ticket,
	duration_ns, requested_at, not_before, starts, expires, renewals, reason, updated, requester_groups`

type rowScanner interface{ Scan(dest ...any) error }

// listRows runs query on q and returns every row as scan reads it; what
// names the listing in errors ("listing what: …").
func listRows[T any](ctx context.Context, q querier, what, query string, args []any, scan func(rowScanner) (T, error)) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing %s: %w", what, err)
	}
	return out, nil
}

// scanGrant reads a grant row of grantCols; groups decodes its requester
// groups.
func scanGrant(row rowScanner, groups *groupDecoder) (model.Grant, error) {
	var g model.Grant
	var principal string
	var requesterGroups sql.NullString
	err := row.Scan(&g.ID, &g.Version, &g.Kind, &principal, &g.Role, &g.Policy, &g.Status, &g.Justification, &g.Ticket,
		&g.Duration, timeCol{&g.RequestedAt}, timeCol{&g.NotBefore}, timeCol{&g.Starts}, timeCol{&g.Expires},
		&g.Renewals, &g.Reason, timeCol{&g.Updated}, &requesterGroups)
	if err != nil {
		return g, err
	}
	if g.Principal, err = model.ParsePrincipal(principal); err != nil {
		return g, fmt.Errorf("reading grant %s: stored principal: %w", g.ID, err)
	}
	if requesterGroups.Valid {
		if g.RequesterGroups, err = groups.decode(requesterGroups.String); err != nil {
			return g, fmt.Errorf("reading grant %s: stored requester groups: %w", g.ID, err)
		}
	}
	// Listing every live grant holds one copy of each in memory for as
	// long as the caller keeps them: share the strings many grants repeat.
	g.Kind = model.GrantKind(intern(string(g.Kind)))
	g.Status = model.GrantStatus(intern(string(g.Status)))
	g.Role, g.Policy, g.Reason = intern(g.Role), intern(g.Policy), intern(g.Reason)
	return g, nil
}

// groupDecoder decodes the requester_groups column: a JSON array of
// principal strings. Within one read, grants with the same list share one
// decoded copy (most requesters of a team have the same groups), as
// model.Grant.RequesterGroups allows.
type groupDecoder struct {
	seen map[string][]model.Principal
}

func (d *groupDecoder) decode(text string) ([]model.Principal, error) {
	if ps, ok := d.seen[text]; ok {
		return ps, nil
	}
	var ps []model.Principal
	if err := json.Unmarshal([]byte(text), &ps); err != nil {
		return nil, err
	}
	if ps == nil { // "null" is not a list; only NULL means not recorded
		return nil, fmt.Errorf("%q is not a JSON array of principals", text)
	}
	for i := range ps {
		ps[i].Value = intern(ps[i].Value)
	}
	ps = slices.Clip(ps) // an append by a holder copies instead of writing into the shared array
	if d.seen == nil {
		d.seen = map[string][]model.Principal{}
	}
	d.seen[text] = ps
	return ps, nil
}

// encodeGroups is the requester_groups value of a grant: NULL when not
// recorded, otherwise a JSON array ("[]" for none).
func encodeGroups(ps []model.Principal) (any, error) {
	if ps == nil {
		return nil, nil
	}
	b, err := json.Marshal(ps)
	if err != nil {
		return nil, fmt.Errorf("encoding requester groups: %w", err)
	}
	return string(b), nil
}

// countRows counts the rows of table matching where (joined with AND), so
// that a list of many rows is read into a slice of the right size: growing
// it row by row would allocate several times its final size.
func (s *sqlStore) countRows(ctx context.Context, tx *sql.Tx, table string, where []string, args []any) (int, error) {
	query := `SELECT COUNT(*) FROM ` + table
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	var n int
	if err := tx.QueryRowContext(ctx, s.q(query), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting %s: %w", table, err)
	}
	return n, nil
}

// intern returns the one shared copy of s (see package unique): values
// read row by row would otherwise each hold their own copy of the same few
// kinds, statuses, roles, policies, clouds and scopes.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}

func (s *sqlStore) grantArgs(g model.Grant) ([]any, error) {
	groups, err := encodeGroups(g.RequesterGroups)
	if err != nil {
		return nil, fmt.Errorf("creating grant %s: %w", g.ID, err)
	}
	return []any{g.ID, g.Version, string(g.Kind), g.Principal.String(), g.Principal.Key(), g.Role, g.Policy, string(g.Status),
		g.Justification, g.Ticket, int64(g.Duration), s.t(g.RequestedAt), s.t(g.NotBefore), s.t(g.Starts), s.t(g.Expires),
		g.Renewals, g.Reason, s.t(g.Updated), groups}, nil
}

func (s *sqlStore) CreateGrant(ctx context.Context, g model.Grant, c Change) (model.Grant, error) {
	g, err := prepareCreate(g, c, s.now())
	if err != nil {
		return model.Grant{}, err
	}
	args, err := s.grantArgs(g)
	if err != nil {
		return model.Grant{}, err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO grants (id, version, kind, principal, principal_key, role, policy, status,
			justification, ticket, duration_ns, requested_at, not_before, starts, expires, renewals, reason, updated, requester_groups)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`), args...)
		if err != nil {
			if s.d.isUnique(err) {
				return fmt.Errorf("creating grant %s: %w", g.ID, ErrExists)
			}
			return fmt.Errorf("creating grant %s: %w", g.ID, err)
		}
		return s.recordGrant(ctx, tx, nil, g, g.Approvals, c)
	})
	if err != nil {
		return model.Grant{}, err
	}
	return g, nil
}

// recordGrant writes a grant's new approvals, its history event and its
// audit entry.
func (s *sqlStore) recordGrant(ctx context.Context, tx *sql.Tx, old *model.Grant, g model.Grant, added []model.Approval, c Change) error {
	idx := len(g.Approvals) - len(added)
	for i, a := range added {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO grant_approvals (grant_id, idx, approver, approver_key, at, approve, comment)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`), g.ID, idx+i, a.Approver.String(), a.Approver.Key(), s.t(a.At), a.Approve, a.Comment)
		if err != nil {
			if s.d.isUnique(err) {
				return fmt.Errorf("recording approval of grant %s by %s: %w", g.ID, a.Approver, ErrExists)
			}
			return fmt.Errorf("recording approval of grant %s by %s: %w", g.ID, a.Approver, err)
		}
	}
	ev := grantEvent(old, g, c)
	snap, err := json.Marshal(ev.Grant)
	if err != nil {
		return fmt.Errorf("encoding grant %s: %w", g.ID, err)
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO grant_events (grant_id, version, at, actor, action, note, from_status, to_status, snapshot)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`), ev.GrantID, ev.Version, s.t(ev.At), ev.Actor, ev.Action, ev.Note,
		string(ev.From), string(ev.To), string(snap))
	if err != nil {
		return fmt.Errorf("recording history of grant %s: %w", g.ID, err)
	}
	_, err = s.appendTx(ctx, tx, grantAudit(ev))
	return err
}

func (s *sqlStore) getGrantTx(ctx context.Context, tx *sql.Tx, id string, lock string) (model.Grant, error) {
	g, err := scanGrant(tx.QueryRowContext(ctx, s.q(`SELECT `+grantCols+` FROM grants WHERE id = $1`+lock), id), &groupDecoder{})
	if errors.Is(err, sql.ErrNoRows) {
		return g, fmt.Errorf("reading grant %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return g, fmt.Errorf("reading grant %s: %w", id, err)
	}
	as, err := s.approvalsTx(ctx, tx, []string{id})
	if err != nil {
		return g, err
	}
	g.Approvals = as[id]
	return g, nil
}

// approvalsTx loads the approvals of the given grants.
func (s *sqlStore) approvalsTx(ctx context.Context, tx *sql.Tx, ids []string) (map[string][]model.Approval, error) {
	out := map[string][]model.Approval{}
	const chunk = 500
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		part := ids[:n]
		ids = ids[n:]
		ph := make([]string, len(part))
		args := make([]any, len(part))
		for i, id := range part {
			ph[i] = fmt.Sprintf("$%d", i+1)
			args[i] = id
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT grant_id, approver, at, approve, comment FROM grant_approvals
			WHERE grant_id IN (`+strings.Join(ph, ", ")+`) ORDER BY grant_id, idx`), args...)
		if err != nil {
			return nil, fmt.Errorf("reading approvals: %w", err)
		}
		for rows.Next() {
			var id, approver string
			var a model.Approval
			if err := rows.Scan(&id, &approver, timeCol{&a.At}, &a.Approve, &a.Comment); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reading approvals: %w", err)
			}
			if a.Approver, err = model.ParsePrincipal(approver); err != nil {
				rows.Close()
				return nil, fmt.Errorf("reading approvals of grant %s: stored approver: %w", id, err)
			}
			out[id] = append(out[id], a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("reading approvals: %w", err)
		}
	}
	return out, nil
}

func (s *sqlStore) GetGrant(ctx context.Context, id string) (model.Grant, error) {
	var g model.Grant
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		g, err = s.getGrantTx(ctx, tx, id, "")
		return err
	})
	return g, err
}

func (s *sqlStore) UpdateGrant(ctx context.Context, g model.Grant, c Change) (model.Grant, error) {
	if err := checkChange(c); err != nil {
		return model.Grant{}, err
	}
	now := s.now()
	var out model.Grant
	err := s.write(ctx, func(tx *sql.Tx) error {
		old, err := s.getGrantTx(ctx, tx, g.ID, s.d.forUpdate)
		if err != nil {
			return fmt.Errorf("updating grant: %w", err)
		}
		next, added, err := prepareUpdate(old, g, c, now)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE grants SET version = $1, status = $2, justification = $3, ticket = $4,
			duration_ns = $5, not_before = $6, starts = $7, expires = $8, renewals = $9, reason = $10, updated = $11
			WHERE id = $12 AND version = $13`),
			next.Version, string(next.Status), next.Justification, next.Ticket, int64(next.Duration), s.t(next.NotBefore),
			s.t(next.Starts), s.t(next.Expires), next.Renewals, next.Reason, s.t(next.Updated), next.ID, old.Version)
		if err != nil {
			return fmt.Errorf("updating grant %s: %w", g.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("updating grant %s: it changed during the update: %w", g.ID, ErrConflict)
		}
		if err := s.recordGrant(ctx, tx, &old, next, added, c); err != nil {
			return err
		}
		out = next
		return nil
	})
	if err != nil {
		return model.Grant{}, err
	}
	return out, nil
}

func (s *sqlStore) ListGrants(ctx context.Context, f GrantFilter) ([]model.Grant, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if len(f.Status) > 0 {
		ph := make([]string, len(f.Status))
		for i, st := range f.Status {
			ph[i] = arg(string(st))
		}
		where = append(where, "status IN ("+strings.Join(ph, ", ")+")")
	}
	if !f.Principal.IsZero() {
		where = append(where, "principal_key = "+arg(f.Principal.Key()))
	}
	if f.Role != "" {
		where = append(where, "role = "+arg(f.Role))
	}
	if !f.ActiveAt.IsZero() {
		at := s.t(f.ActiveAt)
		// The SQL form of model.Grant.ActiveAt.
		where = append(where, fmt.Sprintf("status IN (%s, %s) AND starts IS NOT NULL AND starts <= %s AND expires > %s",
			arg(string(model.StatusApproved)), arg(string(model.StatusActive)), arg(at), arg(at)))
	}
	if !f.UpdatedSince.IsZero() {
		where = append(where, "updated >= "+arg(s.t(f.UpdatedSince)))
	}
	query := `SELECT ` + grantCols + ` FROM grants`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	countArgs := slices.Clone(args)
	query += " ORDER BY requested_at, id"
	if f.Limit > 0 {
		query += " LIMIT " + arg(f.Limit)
	}
	var out []model.Grant
	err := s.read(ctx, func(tx *sql.Tx) error {
		n, err := s.countRows(ctx, tx, "grants", where, countArgs)
		if err != nil {
			return fmt.Errorf("listing grants: %w", err)
		}
		if f.Limit > 0 {
			n = min(n, f.Limit)
		}
		if n > 0 { // nil, as before, when there are none
			out = make([]model.Grant, 0, n)
		}
		rows, err := tx.QueryContext(ctx, s.q(query), args...)
		if err != nil {
			return fmt.Errorf("listing grants: %w", err)
		}
		defer rows.Close()
		ids := make([]string, 0, n)
		var groups groupDecoder
		for rows.Next() {
			g, err := scanGrant(rows, &groups)
			if err != nil {
				return fmt.Errorf("listing grants: %w", err)
			}
			out = append(out, g)
			ids = append(ids, g.ID)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("listing grants: %w", err)
		}
		rows.Close()
		as, err := s.approvalsTx(ctx, tx, ids)
		if err != nil {
			return err
		}
		for i := range out {
			out[i].Approvals = as[out[i].ID]
		}
		return nil
	})
	return out, err
}

func (s *sqlStore) GrantHistory(ctx context.Context, id string) ([]GrantEvent, error) {
	var out []GrantEvent
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT version, at, actor, action, note, from_status, to_status, snapshot
			FROM grant_events WHERE grant_id = $1 ORDER BY version`), id)
		if err != nil {
			return fmt.Errorf("reading history of grant %s: %w", id, err)
		}
		defer rows.Close()
		for rows.Next() {
			ev := GrantEvent{GrantID: id}
			var snap string
			if err := rows.Scan(&ev.Version, timeCol{&ev.At}, &ev.Actor, &ev.Action, &ev.Note, &ev.From, &ev.To, &snap); err != nil {
				return fmt.Errorf("reading history of grant %s: %w", id, err)
			}
			if err := json.Unmarshal([]byte(snap), &ev.Grant); err != nil {
				return fmt.Errorf("reading history of grant %s version %d: %w", id, ev.Version, err)
			}
			out = append(out, ev)
		}
		return rows.Err()
	})
	if err == nil && len(out) == 0 {
		return nil, fmt.Errorf("reading history of grant %s: %w", id, ErrNotFound)
	}
	return out, err
}

// Bindings.

func (s *sqlStore) PutBinding(ctx context.Context, r BindingRecord) error {
	r, err := checkBinding(r, s.now())
	if err != nil {
		return err
	}
	b := r.Binding
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO bindings (cloud, scope, role, instance_arn, pim, principal, principal_key, owner,
			not_before, expires, native, raw, state, detail, updated)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
			ON CONFLICT (cloud, scope, role, instance_arn, pim, principal_key, owner) DO UPDATE SET
			principal = excluded.principal, not_before = excluded.not_before, expires = excluded.expires, native = excluded.native,
			raw = excluded.raw, state = excluded.state, detail = excluded.detail, updated = excluded.updated`),
			string(b.Target.Cloud), b.Target.Scope, b.Target.Role, b.Target.InstanceARN, b.Target.PIM, b.Principal.String(),
			b.Principal.Key(), b.Owner, s.t(b.NotBefore), s.t(b.Expires), b.Native, b.Raw, string(r.State), r.Detail, s.t(r.Updated))
		if err != nil {
			return fmt.Errorf("storing binding %s for %s: %w", b.Target, b.Principal, err)
		}
		return nil
	})
}

func (s *sqlStore) DeleteBinding(ctx context.Context, b model.Binding) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM bindings WHERE cloud = $1 AND scope = $2 AND role = $3 AND instance_arn = $4
			AND pim = $5 AND principal_key = $6 AND owner = $7`),
			string(b.Target.Cloud), b.Target.Scope, b.Target.Role, b.Target.InstanceARN, b.Target.PIM, b.Principal.Key(), b.Owner)
		if err != nil {
			return fmt.Errorf("deleting binding %s for %s: %w", b.Target, b.Principal, err)
		}
		return nil
	})
}

func (s *sqlStore) ListBindings(ctx context.Context, f BindingFilter) ([]BindingRecord, error) {
	var where []string
	var args []any
	if (f.Scope != model.ScopeKey{}) {
		args = append(args, string(f.Scope.Cloud), f.Scope.Scope)
		where = append(where, fmt.Sprintf("cloud = $%d AND scope = $%d", len(args)-1, len(args)))
	}
	if f.Owner != "" {
		args = append(args, f.Owner)
		where = append(where, fmt.Sprintf("owner = $%d", len(args)))
	}
	query := `SELECT cloud, scope, role, instance_arn, pim, principal, owner, not_before, expires, native, raw, state, detail, updated
		FROM bindings`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY cloud, scope, role, instance_arn, pim, principal_key, owner"
	var out []BindingRecord
	err := s.read(ctx, func(tx *sql.Tx) error {
		n, err := s.countRows(ctx, tx, "bindings", where, args)
		if err != nil {
			return fmt.Errorf("listing bindings: %w", err)
		}
		if n > 0 { // nil, as before, when there are none
			out = make([]BindingRecord, 0, n)
		}
		rows, err := tx.QueryContext(ctx, s.q(query), args...)
		if err != nil {
			return fmt.Errorf("listing bindings: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var r BindingRecord
			var principal string
			b := &r.Binding
			if err := rows.Scan(&b.Target.Cloud, &b.Target.Scope, &b.Target.Role, &b.Target.InstanceARN, &b.Target.PIM, &principal,
				&b.Owner, timeCol{&b.NotBefore}, timeCol{&b.Expires}, &b.Native, &b.Raw, &r.State, &r.Detail, timeCol{&r.Updated}); err != nil {
				return fmt.Errorf("listing bindings: %w", err)
			}
			if b.Principal, err = model.ParsePrincipal(principal); err != nil {
				return fmt.Errorf("listing bindings: stored principal: %w", err)
			}
			b.Target.Cloud = model.Cloud(intern(string(b.Target.Cloud)))
			b.Target.Scope, b.Target.Role, b.Target.InstanceARN = intern(b.Target.Scope), intern(b.Target.Role), intern(b.Target.InstanceARN)
			r.State, r.Detail = BindingState(intern(string(r.State))), intern(r.Detail)
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
}

// Audit.

func (s *sqlStore) AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error) {
	var out AuditEvent
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.appendTx(ctx, tx, e)
		return err
	})
	if err != nil {
		return AuditEvent{}, err
	}
	return out, nil
}

// appendTx appends e inside tx. Locking the head row serialises appends
// across connections and replicas, so the chain stays linear.
func (s *sqlStore) appendTx(ctx context.Context, tx *sql.Tx, e AuditEvent) (AuditEvent, error) {
	e, err := prepareAudit(e)
	if err != nil {
		return AuditEvent{}, err
	}
	var seq int64
	var prev string
	if err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`+s.d.forUpdate).Scan(&seq, &prev); err != nil {
		return AuditEvent{}, fmt.Errorf("appending audit entry %s: reading the head: %w", e.Action, err)
	}
	if seq == 0 {
		prev = GenesisHash
	}
	e = sealAudit(e, seq+1, prev, s.now())
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO audit_events (seq, at, actor, action, subject, data, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`), e.Seq, s.t(e.Time), e.Actor, e.Action, e.Subject, string(e.Data), e.PrevHash, e.Hash)
	if err != nil {
		return AuditEvent{}, fmt.Errorf("appending audit entry %s: %w", e.Action, err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`), e.Seq, e.Hash); err != nil {
		return AuditEvent{}, fmt.Errorf("appending audit entry %s: moving the head: %w", e.Action, err)
	}
	return e, nil
}

const auditCols = `seq, at, actor, action, subject, data, prev_hash, hash`

func scanAudit(rows *sql.Rows) (AuditEvent, error) {
	var e AuditEvent
	var data string
	err := rows.Scan(&e.Seq, timeCol{&e.Time}, &e.Actor, &e.Action, &e.Subject, &data, &e.PrevHash, &e.Hash)
	e.Data = json.RawMessage(data)
	return e, err
}

func (s *sqlStore) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	args := []any{f.AfterSeq}
	query := `SELECT ` + auditCols + ` FROM audit_events WHERE seq > $1`
	if f.Subject != "" {
		args = append(args, f.Subject)
		query += fmt.Sprintf(" AND subject = $%d", len(args))
	}
	if f.Action != "" {
		args = append(args, f.Action)
		query += fmt.Sprintf(" AND action = $%d", len(args))
	}
	if f.Tail && f.Limit > 0 {
		query += " ORDER BY seq DESC"
	} else {
		query += " ORDER BY seq"
	}
	if f.Limit > 0 {
		args = append(args, f.Limit)
		query += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	var out []AuditEvent
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(query), args...)
		if err != nil {
			return fmt.Errorf("listing audit entries: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanAudit(rows)
			if err != nil {
				return fmt.Errorf("listing audit entries: %w", err)
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	if f.Tail && f.Limit > 0 {
		slices.Reverse(out)
	}
	return out, err
}

// verifyPage is how many audit entries VerifyAudit reads at a time.
const verifyPage = 1000

func (s *sqlStore) VerifyAudit(ctx context.Context) (VerifyResult, error) {
	var res VerifyResult
	err := s.read(ctx, func(tx *sql.Tx) error {
		var headSeq int64
		var headHash string
		if err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&headSeq, &headHash); err != nil {
			return fmt.Errorf("verifying audit log: reading the head: %w", err)
		}
		v := newChainVerifier()
		after := int64(0)
		for {
			rows, err := tx.QueryContext(ctx, s.q(`SELECT `+auditCols+` FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`), after, verifyPage)
			if err != nil {
				return fmt.Errorf("verifying audit log: %w", err)
			}
			n, ok := 0, true
			for ok && rows.Next() {
				e, err := scanAudit(rows)
				if err != nil {
					rows.Close()
					return fmt.Errorf("verifying audit log: reading entry after %d: %w", after, err)
				}
				n++
				after = e.Seq
				ok = v.next(e)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("verifying audit log: %w", err)
			}
			if !ok || n < verifyPage {
				break
			}
		}
		res = v.finish(headSeq, headHash)
		return nil
	})
	return res, err
}

// Leases.

func (s *sqlStore) leaseTx(ctx context.Context, tx *sql.Tx, name string) (Lease, error) {
	l := Lease{Name: name}
	err := tx.QueryRowContext(ctx, s.q(`SELECT holder, token, acquired, expires FROM leases WHERE name = $1`+s.d.forUpdate), name).
		Scan(&l.Holder, &l.Token, timeCol{&l.Acquired}, timeCol{&l.Expires})
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("reading lease %s: %w", name, err)
	}
	return l, nil
}

func (s *sqlStore) putLeaseTx(ctx context.Context, tx *sql.Tx, l Lease) error {
	_, err := tx.ExecContext(ctx, s.q(`UPDATE leases SET holder = $2, token = $3, acquired = $4, expires = $5 WHERE name = $1`),
		l.Name, l.Holder, l.Token, s.t(l.Acquired), s.t(l.Expires))
	if err != nil {
		return fmt.Errorf("storing lease %s: %w", l.Name, err)
	}
	return nil
}

func (s *sqlStore) TryAcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (Lease, error) {
	if err := checkLeaseArgs(name, holder, ttl); err != nil {
		return Lease{}, err
	}
	var out Lease
	var held error
	err := s.writeUnfenced(ctx, func(tx *sql.Tx) error {
		// Make sure the row exists so that concurrent acquirers queue on
		// its lock instead of racing to insert it.
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO leases (name, holder, token) VALUES ($1, '', 0) ON CONFLICT (name) DO NOTHING`), name); err != nil {
			return fmt.Errorf("acquiring lease %s: %w", name, err)
		}
		cur, err := s.leaseTx(ctx, tx, name)
		if err != nil {
			return err
		}
		out, held = acquire(cur, name, holder, ttl, now)
		if held != nil {
			return nil
		}
		return s.putLeaseTx(ctx, tx, out)
	})
	if err != nil {
		return Lease{}, err
	}
	return out, held
}

func (s *sqlStore) RenewLease(ctx context.Context, l Lease, ttl time.Duration, now time.Time) (Lease, error) {
	if err := checkLeaseArgs(l.Name, l.Holder, ttl); err != nil {
		return Lease{}, err
	}
	var out Lease
	err := s.writeUnfenced(ctx, func(tx *sql.Tx) error {
		cur, err := s.leaseTx(ctx, tx, l.Name)
		if err != nil {
			return err
		}
		if err := checkHeld(cur, l, "renewing"); err != nil {
			return err
		}
		cur.Expires = normTime(now.Add(ttl))
		out = cur
		return s.putLeaseTx(ctx, tx, cur)
	})
	if err != nil {
		return Lease{}, err
	}
	return out, nil
}

func (s *sqlStore) ReleaseLease(ctx context.Context, l Lease) error {
	return s.writeUnfenced(ctx, func(tx *sql.Tx) error {
		cur, err := s.leaseTx(ctx, tx, l.Name)
		if err != nil {
			return err
		}
		if err := checkHeld(cur, l, "releasing"); err != nil {
			return err
		}
		return s.putLeaseTx(ctx, tx, released(cur))
	})
}

func (s *sqlStore) GetLease(ctx context.Context, name string) (Lease, error) {
	l := Lease{Name: name}
	err := s.r.QueryRowContext(ctx, s.q(`SELECT holder, token, acquired, expires FROM leases WHERE name = $1`), name).
		Scan(&l.Holder, &l.Token, timeCol{&l.Acquired}, timeCol{&l.Expires})
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{}, fmt.Errorf("reading lease %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("reading lease %s: %w", name, err)
	}
	return l, nil
}

// Cursors.

func (s *sqlStore) GetCursor(ctx context.Context, source string) (Cursor, error) {
	c := Cursor{Source: source}
	err := s.r.QueryRowContext(ctx, s.q(`SELECT value, updated FROM audit_cursors WHERE source = $1`), source).
		Scan(&c.Value, timeCol{&c.Updated})
	if errors.Is(err, sql.ErrNoRows) {
		return Cursor{}, fmt.Errorf("reading cursor of audit source %s: %w", source, ErrNotFound)
	}
	if err != nil {
		return Cursor{}, fmt.Errorf("reading cursor of audit source %s: %w", source, err)
	}
	return c, nil
}

func (s *sqlStore) SetCursor(ctx context.Context, source, value string) error {
	if source == "" {
		return fmt.Errorf("storing cursor: source is required: %w", ErrInvalid)
	}
	now := s.now()
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO audit_cursors (source, value, updated) VALUES ($1, $2, $3)
			ON CONFLICT (source) DO UPDATE SET value = excluded.value, updated = excluded.updated`), source, value, s.t(now))
		if err != nil {
			return fmt.Errorf("storing cursor of audit source %s: %w", source, err)
		}
		return nil
	})
}

// Incidents.

const incidentCols = `id, version, policy, account, cloud, declaration, severity, status, opened, first_event, last_event,
	review_due, event_count, successes, failures, events, reviewed_by, reviewed_at, review_notes, reminders, last_reminder, updated`

func scanIncident(row rowScanner) (Incident, error) {
	var inc Incident
	var events string
	err := row.Scan(&inc.ID, &inc.Version, &inc.Policy, &inc.Account, &inc.Cloud, &inc.Declaration, &inc.Severity, &inc.Status,
		timeCol{&inc.Opened}, timeCol{&inc.FirstEvent}, timeCol{&inc.LastEvent}, timeCol{&inc.ReviewDue}, &inc.EventCount,
		&inc.Successes, &inc.Failures, &events, &inc.ReviewedBy, timeCol{&inc.ReviewedAt}, &inc.ReviewNotes, &inc.Reminders,
		timeCol{&inc.LastReminder}, timeCol{&inc.Updated})
	if err != nil {
		return inc, err
	}
	if err := json.Unmarshal([]byte(events), &inc.Events); err != nil {
		return inc, fmt.Errorf("reading incident %s: stored events: %w", inc.ID, err)
	}
	return inc, nil
}

func (s *sqlStore) incidentArgs(inc Incident) ([]any, error) {
	events := inc.Events
	if events == nil {
		events = []IncidentEvent{}
	}
	evs, err := json.Marshal(events)
	if err != nil {
		return nil, fmt.Errorf("encoding events of incident %s: %w", inc.ID, err)
	}
	return []any{inc.ID, inc.Version, inc.Policy, inc.Account, inc.Cloud, inc.Declaration, inc.Severity, string(inc.Status),
		s.t(inc.Opened), s.t(inc.FirstEvent), s.t(inc.LastEvent), s.t(inc.ReviewDue), inc.EventCount, inc.Successes, inc.Failures,
		string(evs), inc.ReviewedBy, s.t(inc.ReviewedAt), inc.ReviewNotes, inc.Reminders, s.t(inc.LastReminder), s.t(inc.Updated)}, nil
}

func (s *sqlStore) CreateIncident(ctx context.Context, inc Incident, c Change, alerts []Alert) (Incident, error) {
	now := s.now()
	inc, err := prepareIncidentCreate(inc, c, now)
	if err != nil {
		return Incident{}, err
	}
	queued, err := prepareAlerts(alerts, inc.ID, now)
	if err != nil {
		return Incident{}, err
	}
	args, err := s.incidentArgs(inc)
	if err != nil {
		return Incident{}, err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO incidents (`+incidentCols+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)`), args...)
		if err != nil {
			if s.d.isUnique(err) {
				return fmt.Errorf("creating incident %s: %w", inc.ID, ErrExists)
			}
			return fmt.Errorf("creating incident %s: %w", inc.ID, err)
		}
		if err := s.queueTx(ctx, tx, queued); err != nil {
			return err
		}
		_, err = s.appendTx(ctx, tx, incidentAudit(inc, c))
		return err
	})
	if err != nil {
		return Incident{}, err
	}
	return inc, nil
}

// queueTx inserts alerts, skipping any key and notifier already queued.
func (s *sqlStore) queueTx(ctx context.Context, tx *sql.Tx, alerts []Alert) error {
	for _, a := range alerts {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO alerts (key, notifier, incident, kind, payload, status, attempts, last_error,
			next_attempt, created, delivered, updated) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (key, notifier) DO NOTHING`),
			a.Key, a.Notifier, a.Incident, a.Kind, string(a.Payload), string(a.Status), a.Attempts, a.LastError,
			s.t(a.NextAttempt), s.t(a.Created), s.t(a.Delivered), s.t(a.Updated))
		if err != nil {
			return fmt.Errorf("queueing alert %s for %s: %w", a.Key, a.Notifier, err)
		}
	}
	return nil
}

func (s *sqlStore) getIncidentTx(ctx context.Context, q querier, id, lock string) (Incident, error) {
	inc, err := scanIncident(q.QueryRowContext(ctx, s.q(`SELECT `+incidentCols+` FROM incidents WHERE id = $1`+lock), id))
	if errors.Is(err, sql.ErrNoRows) {
		return inc, fmt.Errorf("reading incident %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return inc, fmt.Errorf("reading incident %s: %w", id, err)
	}
	return inc, nil
}

func (s *sqlStore) UpdateIncident(ctx context.Context, inc Incident, c Change, alerts []Alert) (Incident, error) {
	now := s.now()
	var out Incident
	err := s.write(ctx, func(tx *sql.Tx) error {
		old, err := s.getIncidentTx(ctx, tx, inc.ID, s.d.forUpdate)
		if err != nil {
			return fmt.Errorf("updating incident: %w", err)
		}
		next, err := prepareIncidentUpdate(old, inc, c, now)
		if err != nil {
			return err
		}
		queued, err := prepareAlerts(alerts, next.ID, now)
		if err != nil {
			return err
		}
		args, err := s.incidentArgs(next)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE incidents SET version = $2, severity = $7, status = $8, first_event = $10,
			last_event = $11, review_due = $12, event_count = $13, successes = $14, failures = $15, events = $16, reviewed_by = $17,
			reviewed_at = $18, review_notes = $19, reminders = $20, last_reminder = $21, updated = $22
			WHERE id = $1 AND version = $23 AND policy = $3 AND account = $4 AND cloud = $5 AND declaration = $6 AND opened = $9`),
			append(args, old.Version)...)
		if err != nil {
			return fmt.Errorf("updating incident %s: %w", inc.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("updating incident %s: it changed during the update: %w", inc.ID, ErrConflict)
		}
		if err := s.queueTx(ctx, tx, queued); err != nil {
			return err
		}
		if _, err := s.appendTx(ctx, tx, incidentAudit(next, c)); err != nil {
			return err
		}
		out = next
		return nil
	})
	if err != nil {
		return Incident{}, err
	}
	return out, nil
}

func (s *sqlStore) GetIncident(ctx context.Context, id string) (Incident, error) {
	return s.getIncidentTx(ctx, s.r, id, "")
}

func (s *sqlStore) ListIncidents(ctx context.Context, f IncidentFilter) ([]Incident, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Open {
		where = append(where, "status = "+arg(string(IncidentOpen)))
	}
	if f.Policy != "" {
		where = append(where, "policy = "+arg(f.Policy))
	}
	if f.Account != "" {
		where = append(where, "account = "+arg(f.Account))
	}
	if !f.LastEventSince.IsZero() {
		where = append(where, "last_event >= "+arg(s.t(f.LastEventSince)))
	}
	if !f.OpenedSince.IsZero() {
		where = append(where, "opened >= "+arg(s.t(f.OpenedSince)))
	}
	query := `SELECT ` + incidentCols + ` FROM incidents`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY opened, id"
	if f.Limit > 0 {
		query += " LIMIT " + arg(f.Limit)
	}
	return listRows(ctx, s.r, "incidents", s.q(query), args, scanIncident)
}

func (s *sqlStore) CreateDeclaration(ctx context.Context, d Declaration) (Declaration, error) {
	d, err := prepareDeclaration(d)
	if err != nil {
		return Declaration{}, err
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO declarations (id, policy, reason, incident, declared_by, at, expires)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`), d.ID, d.Policy, d.Reason, d.Incident, d.DeclaredBy, s.t(d.At), s.t(d.Expires))
		if err != nil {
			if s.d.isUnique(err) {
				return fmt.Errorf("creating declaration %s: %w", d.ID, ErrExists)
			}
			return fmt.Errorf("creating declaration %s: %w", d.ID, err)
		}
		_, err = s.appendTx(ctx, tx, declarationAudit(d))
		return err
	})
	if err != nil {
		return Declaration{}, err
	}
	return d, nil
}

func (s *sqlStore) ListDeclarations(ctx context.Context, f DeclarationFilter) ([]Declaration, error) {
	var where []string
	var args []any
	if f.Policy != "" {
		args = append(args, f.Policy)
		where = append(where, fmt.Sprintf("policy = $%d", len(args)))
	}
	if !f.ExpiresAfter.IsZero() {
		args = append(args, s.t(f.ExpiresAfter))
		where = append(where, fmt.Sprintf("expires > $%d", len(args)))
	}
	query := `SELECT id, policy, reason, incident, declared_by, at, expires FROM declarations`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY at, id"
	if f.Limit > 0 {
		args = append(args, f.Limit)
		query += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	return listRows(ctx, s.r, "declarations", s.q(query), args, func(row rowScanner) (Declaration, error) {
		var d Declaration
		err := row.Scan(&d.ID, &d.Policy, &d.Reason, &d.Incident, &d.DeclaredBy, timeCol{&d.At}, timeCol{&d.Expires})
		return d, err
	})
}

const alertCols = `key, notifier, incident, kind, payload, status, attempts, last_error, next_attempt, created, delivered, updated`

func scanAlert(row rowScanner) (Alert, error) {
	var a Alert
	var payload string
	err := row.Scan(&a.Key, &a.Notifier, &a.Incident, &a.Kind, &payload, &a.Status, &a.Attempts, &a.LastError,
		timeCol{&a.NextAttempt}, timeCol{&a.Created}, timeCol{&a.Delivered}, timeCol{&a.Updated})
	a.Payload = json.RawMessage(payload)
	return a, err
}

func (s *sqlStore) ListAlerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if len(f.Status) > 0 {
		ph := make([]string, len(f.Status))
		for i, st := range f.Status {
			ph[i] = arg(string(st))
		}
		where = append(where, "status IN ("+strings.Join(ph, ", ")+")")
	}
	if f.Incident != "" {
		where = append(where, "incident = "+arg(f.Incident))
	}
	if !f.DueBy.IsZero() {
		where = append(where, "next_attempt <= "+arg(s.t(f.DueBy)))
	}
	query := `SELECT ` + alertCols + ` FROM alerts`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created, key, notifier"
	if f.Limit > 0 {
		query += " LIMIT " + arg(f.Limit)
	}
	return listRows(ctx, s.r, "alerts", s.q(query), args, scanAlert)
}

func (s *sqlStore) UpdateAlert(ctx context.Context, a Alert) (Alert, error) {
	if err := checkAlertUpdate(a); err != nil {
		return Alert{}, err
	}
	now := s.now()
	var out Alert
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE alerts SET status = $3, attempts = $4, last_error = $5, next_attempt = $6,
			delivered = $7, updated = $8 WHERE key = $1 AND notifier = $2`),
			a.Key, a.Notifier, string(a.Status), a.Attempts, a.LastError, s.t(a.NextAttempt), s.t(a.Delivered), s.t(now))
		if err != nil {
			return fmt.Errorf("updating alert %s for %s: %w", a.Key, a.Notifier, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("updating alert %s for %s: %w", a.Key, a.Notifier, ErrNotFound)
		}
		out, err = scanAlert(tx.QueryRowContext(ctx, s.q(`SELECT `+alertCols+` FROM alerts WHERE key = $1 AND notifier = $2`), a.Key, a.Notifier))
		if err != nil {
			return fmt.Errorf("reading alert %s for %s: %w", a.Key, a.Notifier, err)
		}
		return nil
	})
	if err != nil {
		return Alert{}, err
	}
	return out, nil
}

func (s *sqlStore) PutSourceStatus(ctx context.Context, st SourceStatus) error {
	st, err := prepareSourceStatus(st, s.now())
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO audit_source_status (name, type, format, cloud, last_poll, error, caught_up,
			last_event, updated) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (name) DO UPDATE SET type = excluded.type, format = excluded.format, cloud = excluded.cloud,
			last_poll = excluded.last_poll, error = excluded.error, caught_up = excluded.caught_up, last_event = excluded.last_event,
			updated = excluded.updated`),
			st.Name, st.Type, st.Format, st.Cloud, s.t(st.LastPoll), st.Error, s.t(st.CaughtUp), s.t(st.LastEvent), s.t(st.Updated))
		if err != nil {
			return fmt.Errorf("storing status of audit source %s: %w", st.Name, err)
		}
		return nil
	})
}

func (s *sqlStore) ListSourceStatus(ctx context.Context) ([]SourceStatus, error) {
	return listRows(ctx, s.r, "audit source status", `SELECT name, type, format, cloud, last_poll, error, caught_up, last_event, updated
		FROM audit_source_status ORDER BY name`, nil, func(row rowScanner) (SourceStatus, error) {
		var st SourceStatus
		err := row.Scan(&st.Name, &st.Type, &st.Format, &st.Cloud, timeCol{&st.LastPoll}, &st.Error, timeCol{&st.CaughtUp},
			timeCol{&st.LastEvent}, timeCol{&st.Updated})
		return st, err
	})
}
