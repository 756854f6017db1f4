package app

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/elevatehq/elevate/policies"
)

// policySource holds the daemon's current policy set and reloads it when
// the policy files change (fsnotify, recursively) or on SIGHUP. A reload
// with errors keeps the last good set and records the diagnostics, so the
// API can show them; a good reload swaps the set atomically and tells the
// engine.
type policySource struct {
	path   string
	logger *slog.Logger
	now    func() time.Time

	cur  atomic.Pointer[loadedPolicies]
	last atomic.Pointer[reloadResult]

	mu        sync.Mutex // serialises reloads
	listeners []func()

	// pollEvery is how often Watch polls the files; reloadPollInterval
	// unless a test sets it.
	pollEvery time.Duration
}

// loadedPolicies is one good policy set and when it was loaded.
type loadedPolicies struct {
	Set      *policies.Set
	LoadedAt time.Time
	// Warnings are the warnings of the load that produced Set.
	Warnings policies.Diagnostics
}

// reloadResult is the outcome of the latest load attempt.
type reloadResult struct {
	OK          bool
	At          time.Time
	Diagnostics policies.Diagnostics
}

// newPolicySource loads path once. With errors it returns the diagnostics
// and no source: the daemon must not start on a broken policy set.
func newPolicySource(path string, logger *slog.Logger) (*policySource, policies.Diagnostics) {
	ps := &policySource{path: path, logger: logger, now: time.Now, pollEvery: reloadPollInterval}
	set, diags := policies.Validate(path)
	if diags.HasErrors() {
		return nil, diags
	}
	now := ps.now()
	ps.cur.Store(&loadedPolicies{Set: set, LoadedAt: now, Warnings: diags})
	ps.last.Store(&reloadResult{OK: true, At: now, Diagnostics: diags})
	return ps, diags
}

// Current returns the current good set.
func (ps *policySource) Current() *policies.Set { return ps.cur.Load().Set }

// Loaded returns the current good set with its load time.
func (ps *policySource) Loaded() *loadedPolicies { return ps.cur.Load() }

// LastReload returns the outcome of the latest load attempt.
func (ps *policySource) LastReload() *reloadResult { return ps.last.Load() }

// OnChange registers f to run after every successful reload.
func (ps *policySource) OnChange(f func()) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.listeners = append(ps.listeners, f)
}

// Reload loads the policy files again and reports whether the new set was
// taken.
func (ps *policySource) Reload(ctx context.Context, cause string) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	set, diags := policies.Validate(ps.path)
	now := ps.now()
	if diags.HasErrors() {
		ps.last.Store(&reloadResult{OK: false, At: now, Diagnostics: diags})
		errs, warns := diags.Count()
		attrs := []any{"cause", cause, "errors", errs, "warnings", warns}
		for i, d := range diags {
			if i == 10 {
				attrs = append(attrs, "more", len(diags)-10)
				break
			}
			if d.Severity == policies.SeverityError {
				attrs = append(attrs, "diagnostic_"+strconv.Itoa(i+1), d.Error())
			}
		}
		ps.logger.ErrorContext(ctx, "policy reload failed; keeping the last good policy set", attrs...)
		return false
	}
	ps.cur.Store(&loadedPolicies{Set: set, LoadedAt: now, Warnings: diags})
	ps.last.Store(&reloadResult{OK: true, At: now, Diagnostics: diags})
	_, warns := diags.Count()
	ps.logger.InfoContext(ctx, "policies reloaded", "cause", cause, "files", len(set.Files),
		"roles", len(set.Roles), "jit", len(set.JIT), "temporary", len(set.Temporary), "warnings", warns)
	for _, f := range ps.listeners {
		f()
	}
	return true
}

// reloadDebounce is how long the watcher waits for a burst of file events
// (an editor's save, a git checkout) to settle before reloading.
const reloadDebounce = 250 * time.Millisecond

// reloadPollInterval is how often the policy files are also checked by
// size and modification time, for the changes file events miss: a
// watcher that could not start (inotify limits), network file systems,
// and Kubernetes ConfigMap volumes, which swap a hidden ..data symlink.
const reloadPollInterval = 5 * time.Second

// Watch starts watching: SIGHUP, file events under the policy path, and a
// poll of the files' sizes and modification times. Everything is set up
// before Watch returns, so a change made after it is never missed; the
// watching itself runs in a goroutine until ctx ends, and the returned
// channel closes when it has stopped. A file watcher that cannot start
// is logged; the poll and SIGHUP still work.
func (ps *policySource) Watch(ctx context.Context) <-chan struct{} {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)

	var events <-chan fsnotify.Event
	var errs <-chan error
	w, err := fsnotify.NewWatcher()
	if err != nil {
		ps.logger.WarnContext(ctx, "cannot watch the policy files; changes are noticed by polling every "+reloadPollInterval.String()+", or reload with SIGHUP", "error", err)
		w = nil
	} else {
		if err := addRecursive(w, ps.path); err != nil {
			ps.logger.WarnContext(ctx, "cannot watch every policy directory; changes there are noticed by polling every "+reloadPollInterval.String()+", or reload with SIGHUP", "error", err)
		}
		events, errs = w.Events, w.Errors
	}
	fp := policyFingerprint(ps.path)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(hup)
		if w != nil {
			defer w.Close()
		}
		poll := time.NewTicker(ps.pollEvery)
		defer poll.Stop()
		var timer *time.Timer
		var fire <-chan time.Time
		reload := func(cause string) {
			fp = policyFingerprint(ps.path)
			ps.Reload(ctx, cause)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload("SIGHUP")
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				if ev.Has(fsnotify.Create) {
					if info, err := os.Stat(ev.Name); err == nil && info.IsDir() {
						_ = addRecursive(w, ev.Name)
					}
				}
				if !relevant(ev.Name) {
					continue
				}
				if timer == nil {
					timer = time.NewTimer(reloadDebounce)
				} else {
					timer.Reset(reloadDebounce)
				}
				fire = timer.C
			case err, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				ps.logger.WarnContext(ctx, "policy file watcher error", "error", err)
			case <-fire:
				fire = nil
				reload("file change")
			case <-poll.C:
				if fire == nil && policyFingerprint(ps.path) != fp {
					reload("file change (poll)")
				}
			}
		}
	}()
	return done
}

// policyFingerprint sums the path, size and modification time of every
// policy file under root (following symbolic links to files, as the
// loader does). Any edit, addition, removal or rename changes it.
func policyFingerprint(root string) uint64 {
	h := fnv.New64a()
	var buf [8]byte
	add := func(p string, info fs.FileInfo) {
		h.Write([]byte(p))
		binary.LittleEndian.PutUint64(buf[:], uint64(info.Size()))
		h.Write(buf[:])
		binary.LittleEndian.PutUint64(buf[:], uint64(info.ModTime().UnixNano()))
		h.Write(buf[:])
	}
	info, err := os.Stat(root)
	if err != nil {
		return 0
	}
	if !info.IsDir() {
		add(root, info)
		return h.Sum64()
	}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			h.Write([]byte("!" + p))
			return nil
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && p != root {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(d.Name(), ".hcl") {
			return nil
		}
		if info, err := os.Stat(p); err == nil {
			add(p, info)
		}
		return nil
	})
	return h.Sum64()
}

// relevant reports whether a changed path can affect the policy set: an
// .hcl file, or a directory (whose removal or rename removes files).
func relevant(name string) bool {
	base := filepath.Base(name)
	if strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") {
		return false
	}
	return strings.HasSuffix(base, ".hcl") || filepath.Ext(base) == ""
}

// addRecursive watches root and every directory below it (root may be a
// single file: then its directory is watched).
func addRecursive(w *fsnotify.Watcher, root string) error {
	info, err := os.Stat(root)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return w.Add(filepath.Dir(root))
	}
	var errs []error
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && p != root {
				return filepath.SkipDir
			}
			if err := w.Add(p); err != nil {
				errs = append(errs, err)
			}
		}
		return nil
	})
	return errors.Join(errs...)
}
