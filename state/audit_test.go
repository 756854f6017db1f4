package state_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/elevatehq/elevate/state"
)

// TestAuditHashEncoding pins the canonical encoding: changing it would make
// every existing log fail verification. The expected value was computed
// independently from the encoding described on AuditHash.
func TestAuditHashEncoding(t *testing.T) {
	e := state.AuditEvent{
		Seq: 42, Time: time.Date(2026, 3, 1, 11, 0, 0, 123456000, time.UTC),
		Actor: "user:alice@example.com", Action: "grant.approve", Subject: "grant/gabc",
		Data: json.RawMessage(`{"version":2}`), PrevHash: state.GenesisHash,
	}
	const want = "c94f79b2e0d50881ba85d2e82b12d7d2760f907419ba0581d216549f47d8032a"
	if got := state.AuditHash(e); got != want {
		t.Fatalf("AuditHash = %s, want %s", got, want)
	}
	// The stored Hash is not part of its own input, and the time zone does
	// not matter, only the instant.
	e.Hash = "anything"
	e.Time = e.Time.In(time.FixedZone("X", -5*3600))
	if got := state.AuditHash(e); got != want {
		t.Fatalf("AuditHash depends on Hash or the zone: %s", got)
	}

	// Every field counts, and moving bytes between fields changes the hash.
	variants := map[string]func(*state.AuditEvent){
		"seq":       func(e *state.AuditEvent) { e.Seq++ },
		"time":      func(e *state.AuditEvent) { e.Time = e.Time.Add(time.Microsecond) },
		"actor":     func(e *state.AuditEvent) { e.Actor += "x" },
		"action":    func(e *state.AuditEvent) { e.Action = "grant.deny" },
		"subject":   func(e *state.AuditEvent) { e.Subject = "grant/gabd" },
		"data":      func(e *state.AuditEvent) { e.Data = json.RawMessage(`{"version":3}`) },
		"prev_hash": func(e *state.AuditEvent) { e.PrevHash = "1" + e.PrevHash[1:] },
		"boundary": func(e *state.AuditEvent) {
			e.Action, e.Subject = "grant.approvegrant/", "gabc"
		},
	}
	for name, mutate := range variants {
		v := e
		mutate(&v)
		if state.AuditHash(v) == want {
			t.Errorf("changing %s does not change the hash", name)
		}
	}
}
