package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

var postgresDialect = &dialect{
	name:      "PostgreSQL",
	forUpdate: " FOR UPDATE",
	forShare:  " FOR SHARE",
	readTx:    &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
	isUnique: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505"
	},
}

// migrationLockKey is the pg_advisory_lock key that keeps replicas starting
// together from migrating at the same time.
const migrationLockKey int64 = 0x656c65766174650a // "elevate\n"

// openPostgres connects through a pgx pool and migrates the schema that the
// connection's search_path selects.
func openPostgres(ctx context.Context, url string, o options) (Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing PostgreSQL state URL: %w", err)
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL state store %s: %w", where, err)
	}
	db := stdlib.OpenDBFromPool(pool)
	closeAll := func() error {
		err := db.Close()
		pool.Close()
		return err
	}
	if err := db.PingContext(ctx); err != nil {
		closeAll()
		return nil, fmt.Errorf("connecting to PostgreSQL state store %s: %w", where, err)
	}
	s := &sqlStore{w: db, r: db, d: postgresDialect, now: o.now, close: closeAll}
	if err := s.migratePostgres(ctx); err != nil {
		closeAll()
		return nil, fmt.Errorf("preparing PostgreSQL state store %s: %w", where, err)
	}
	return s, nil
}

func (s *sqlStore) migratePostgres(ctx context.Context) (err error) {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	defer func() {
		// A fresh context: the unlock must run even if ctx was cancelled,
		// or the lock would stay with this pooled connection.
		if _, uerr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockKey); uerr != nil && err == nil {
			err = fmt.Errorf("releasing the migration lock: %w", uerr)
		}
	}()
	return migrate(ctx, conn, "postgres", s.now())
}
