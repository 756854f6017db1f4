package state

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// acceptedURLs is the part of every URL error that says what to write.
const acceptedURLs = "use sqlite:PATH (for example sqlite:/var/lib/elevate/state.db, or sqlite::memory:), " +
	"postgres://USER:PASSWORD@HOST:PORT/DATABASE (or postgresql://…), or mem: for a throwaway in-memory store"

// Option configures Open.
type Option func(*options)

type options struct {
	now func() time.Time
}

// WithClock makes the store stamp record times (grant updates, history,
// audit entries, bindings, cursors) from now instead of the wall clock.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

func buildOptions(opts []Option) options {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Open opens the store named by url and brings its schema up to date:
//
//	sqlite:PATH          a SQLite file, created if missing (sqlite::memory: for a private in-memory database)
//	postgres://…         PostgreSQL (also postgresql://…), any libpq-style URL pgx accepts
//	mem:                 an in-memory store that forgets everything on Close
func Open(ctx context.Context, url string, opts ...Option) (Store, error) {
	o := buildOptions(opts)
	scheme, rest, ok := strings.Cut(url, ":")
	if !ok {
		return nil, fmt.Errorf("state URL %q has no scheme: %s", url, acceptedURLs)
	}
	switch scheme {
	case "sqlite":
		path := strings.TrimPrefix(rest, "//")
		if path == "" {
			return nil, fmt.Errorf("state URL %q names no file: %s", url, acceptedURLs)
		}
		if strings.Contains(path, "?") {
			return nil, fmt.Errorf("state URL %q: SQLite options are not accepted (elevate sets WAL, busy timeout and foreign keys itself); give just the path", url)
		}
		return openSQLite(ctx, path, o)
	case "postgres", "postgresql":
		// The URL may hold a password: never echo it.
		return openPostgres(ctx, url, o)
	case "mem":
		if rest != "" {
			return nil, fmt.Errorf("state URL %q: mem: takes nothing after the colon", url)
		}
		return newMem(o), nil
	}
	return nil, fmt.Errorf("unsupported state URL scheme %q: %s", scheme, acceptedURLs)
}
