package app

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/state"
)

// triggerLog records the scopes a replica's engine was asked to reconcile.
type triggerLog struct {
	mu     sync.Mutex
	scopes []model.ScopeKey
}

func (l *triggerLog) trigger(scopes ...model.ScopeKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.scopes = append(l.scopes, scopes...)
}

func (l *triggerLog) get() []model.ScopeKey {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.scopes)
}

// TestOutsideChangesReachTheLeader: a change seen by a replica that does
// not lead reconcile reaches the leader through the store; the leader's
// own reports trigger once; a new leader starts from the log's head; an
// unreadable entry is skipped.
func TestOutsideChangesReachTheLeader(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := state.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "elevate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))

	var aLeads, bLeads atomic.Bool
	bLeads.Store(true)
	var aLog, bLog triggerLog
	a := &outsideChanges{store: store, holder: "a", isLeader: aLeads.Load, trigger: aLog.trigger, interval: 20 * time.Millisecond, log: logger}
	b := &outsideChanges{store: store, holder: "b", isLeader: bLeads.Load, trigger: bLog.trigger, interval: 20 * time.Millisecond, log: logger}
	go a.run(ctx)
	go b.run(ctx)
	time.Sleep(100 * time.Millisecond) // b finds the head

	waitScopes := func(l *triggerLog, want []model.ScopeKey) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !slices.Equal(l.get(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("triggered %v, want %v", l.get(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	p1 := model.ScopeKey{Cloud: model.CloudGCP, Scope: "projects/one"}
	p2 := model.ScopeKey{Cloud: model.CloudGCP, Scope: "projects/two"}
	p3 := model.ScopeKey{Cloud: model.CloudGCP, Scope: "projects/three"}

	// A does not lead: it records, B reconciles.
	a.record(ctx, p1)
	waitScopes(&bLog, []model.ScopeKey{p1})
	if got := aLog.get(); len(got) != 0 {
		t.Fatalf("the replica that does not lead triggered itself: %v", got)
	}

	// B leads and reports itself: one trigger, not a second from the log.
	b.record(ctx, p2)
	waitScopes(&bLog, []model.ScopeKey{p1, p2})
	time.Sleep(150 * time.Millisecond)
	waitScopes(&bLog, []model.ScopeKey{p1, p2})

	// An unreadable entry is reported and skipped; the next one arrives.
	if _, err := store.AppendAudit(ctx, state.AuditEvent{Actor: "elevate", Action: outsideChangeAction, Subject: "scope/x", Data: []byte(`{"cloud":""}`)}); err != nil {
		t.Fatal(err)
	}
	a.record(ctx, p3)
	waitScopes(&bLog, []model.ScopeKey{p1, p2, p3})
	logMu.Lock()
	unreadable := strings.Contains(logs.String(), "skipping an unreadable audit entry")
	logMu.Unlock()
	if !unreadable {
		t.Errorf("the unreadable entry was not reported:\n%s", logs.String())
	}

	// Leadership moves to A: it starts from the head (its first pass is
	// a full one), then follows B's reports.
	bLeads.Store(false)
	aLeads.Store(true)
	time.Sleep(100 * time.Millisecond)
	if got := aLog.get(); len(got) != 0 {
		t.Fatalf("a new leader replayed old changes: %v", got)
	}
	b.record(ctx, p1)
	waitScopes(&aLog, []model.ScopeKey{p1})
	entries, err := store.ListAudit(ctx, state.AuditFilter{Action: outsideChangeAction})
	if err != nil || len(entries) != 5 || entries[0].Subject != "scope/gcp:projects/one" {
		t.Fatalf("audit entries of outside changes: %v %+v", err, entries)
	}
}

// lockedWriter serialises writes to a buffer shared with the test.
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
