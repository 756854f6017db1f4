package state_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/state"
	"github.com/elevatehq/elevate/state/pgtest"
)

// benchStores are the backends the benchmarks compare; PostgreSQL only when
// ELEVATE_TEST_POSTGRES is set.
func benchStores() []struct {
	name string
	open func(b *testing.B) state.Store
} {
	return []struct {
		name string
		open func(b *testing.B) state.Store
	}{
		{"mem", func(b *testing.B) state.Store { return openURL(b, "mem:") }},
		{"sqlite", func(b *testing.B) state.Store {
			return openURL(b, "sqlite:"+filepath.Join(b.TempDir(), "state.db"))
		}},
		{"postgres", func(b *testing.B) state.Store { return openURL(b, pgtest.Schema(b, "elevate_test")) }},
	}
}

// BenchmarkCreateGrant measures grant creation: the grant row, its history
// event and its audit entry in one transaction.
func BenchmarkCreateGrant(b *testing.B) {
	p := model.MustPrincipal("user:alice@example.com")
	for _, bs := range benchStores() {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.open(b)
			ctx := b.Context()
			now := time.Now()
			b.ResetTimer()
			for i := range b.N {
				g := model.Grant{Kind: model.KindJIT, Principal: p, Role: "db-admin", Policy: "db", Status: model.StatusPending,
					Duration: time.Hour, RequestedAt: now, Justification: fmt.Sprintf("bench %d", i)}
				if _, err := s.CreateGrant(ctx, g, state.Change{Actor: p.String(), Action: "request"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "grants/s")
		})
	}
}

// BenchmarkAppendAudit measures audit appends from one writer.
func BenchmarkAppendAudit(b *testing.B) {
	for _, bs := range benchStores() {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.open(b)
			ctx := b.Context()
			data := json.RawMessage(`{"grant":"g123","scope":"projects/acme-prod","role":"roles/cloudsql.admin"}`)
			b.ResetTimer()
			for range b.N {
				if _, err := s.AppendAudit(ctx, state.AuditEvent{Actor: "elevate:reconcile", Action: "binding.create", Subject: "grant/g123", Data: data}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// BenchmarkAppendAuditParallel measures audit appends from GOMAXPROCS
// writers at once, which all serialise on the chain's head.
func BenchmarkAppendAuditParallel(b *testing.B) {
	for _, bs := range benchStores() {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.open(b)
			ctx := b.Context()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.AppendAudit(ctx, state.AuditEvent{Actor: "elevate:api", Action: "bench.append"}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			if res, err := s.VerifyAudit(ctx); err != nil || !res.OK || res.Checked != int64(b.N) {
				b.Fatalf("after %d parallel appends: %+v, %v", b.N, res, err)
			}
		})
	}
}

// BenchmarkVerifyAudit measures walking a 2,000-entry chain.
func BenchmarkVerifyAudit(b *testing.B) {
	for _, bs := range benchStores() {
		b.Run(bs.name, func(b *testing.B) {
			s := bs.open(b)
			ctx := b.Context()
			for range verifyFill {
				if _, err := s.AppendAudit(ctx, state.AuditEvent{Actor: "a", Action: "bench.fill", Data: json.RawMessage(`{"k":"v"}`)}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				if res, err := s.VerifyAudit(ctx); err != nil || !res.OK {
					b.Fatalf("%+v, %v", res, err)
				}
			}
			b.ReportMetric(verifyFill*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

const verifyFill = 2000
