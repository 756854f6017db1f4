package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var sqliteDialect = &dialect{
	name:   "SQLite",
	sqlite: true,
	readTx: &sql.TxOptions{ReadOnly: true},
	isUnique: func(err error) bool {
		var e *sqlite.Error
		return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
	},
}

// sqliteBusyMillis is how long a writer waits for another process's write
// lock before failing with SQLITE_BUSY. Within one process writers queue on
// the single write connection instead.
const sqliteBusyMillis = 10000

// openSQLite opens (creating if needed) the SQLite database at path, or a
// private in-memory database for ":memory:".
func openSQLite(ctx context.Context, path string, o options) (Store, error) {
	common := fmt.Sprintf("_busy_timeout=%d&_foreign_keys=1", sqliteBusyMillis)
	if path == ":memory:" {
		// Every connection to :memory: is a different database: use one.
		db, err := sql.Open("sqlite", ":memory:?"+common+"&_txlock=immediate")
		if err != nil {
			return nil, fmt.Errorf("opening in-memory SQLite state store: %w", err)
		}
		db.SetMaxOpenConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
		s := &sqlStore{w: db, r: db, d: sqliteDialect, now: o.now, close: db.Close}
		if err := s.migrateSQLite(ctx); err != nil {
			db.Close()
			return nil, err
		}
		return s, nil
	}
	if dir := filepath.Dir(path); dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("opening SQLite state store %s: directory %s does not exist: create it or choose another path", path, dir)
		}
	}
	w, err := sql.Open("sqlite", path+"?"+common+"&_journal_mode=WAL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("opening SQLite state store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	s := &sqlStore{w: w, d: sqliteDialect, now: o.now}
	if err := s.migrateSQLite(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("opening SQLite state store %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", path+"?"+common+"&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening SQLite state store %s for reading: %w", path, err)
	}
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	s.r = r
	s.close = func() error { return errors.Join(r.Close(), w.Close()) }
	return s, nil
}

func (s *sqlStore) migrateSQLite(ctx context.Context) error {
	conn, err := s.w.Conn(ctx)
	// A new connection switches the file to WAL, which needs a lock that a
	// concurrent opener (another replica or process starting at the same
	// moment) may hold briefly; busy_timeout does not cover that step, so
	// retry for as long as it would have waited.
	for wait := 10 * time.Millisecond; err != nil && isSQLiteBusy(err) && wait < sqliteBusyMillis*time.Millisecond; wait *= 2 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("connecting: %w", ctx.Err())
		case <-time.After(wait):
		}
		conn, err = s.w.Conn(ctx)
	}
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	defer conn.Close()
	return migrate(ctx, conn, "sqlite", s.now())
}

// isSQLiteBusy reports whether err is SQLite's "database is locked".
func isSQLiteBusy(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}
