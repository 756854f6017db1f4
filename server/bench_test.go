package server

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/elevatehq/elevate/state/pgtest"
)

// benchBackends are the stores the benchmarks measure: SQLite, and
// PostgreSQL when ELEVATE_TEST_POSTGRES is set.
func benchBackends() []backend {
	bs := []backend{sqliteBackend}
	if pgtest.Configured() {
		bs = append(bs, postgresBackend)
	}
	return bs
}

// BenchmarkRequestSelfService measures POST /v1/requests throughput for a
// self-service role over real HTTP (OIDC RS256 token verification, policy
// evaluation, a grant and its history and audit entry written per
// request), with 4 concurrent clients per core.
func BenchmarkRequestSelfService(b *testing.B) {
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			e := newEnv(b, be)
			e.skipDocCheck = true
			body := map[string]any{"role": "db-read", "justification": "benchmark"}
			b.SetParallelism(4)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if r := e.call("POST", "/v1/requests", requester, body); r.status != http.StatusCreated {
						b.Errorf("POST /v1/requests = %d %s", r.status, r.body)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}

// BenchmarkRequestToApproved measures the latency from sending a request
// that needs approval to the approver's response saying it is approved:
// POST /v1/requests (pending) then POST /v1/grants/{id}/approve, over real
// HTTP, one flow at a time. Reports p50 and p99.
func BenchmarkRequestToApproved(b *testing.B) {
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			e := newEnv(b, be)
			e.skipDocCheck = true
			body := map[string]any{"role": "db-admin", "duration": "30m", "justification": "benchmark", "ticket": "INC-1"}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				r := e.call("POST", "/v1/requests", requester, body)
				if r.status != http.StatusCreated {
					b.Fatalf("request = %d %s", r.status, r.body)
				}
				r = e.call("POST", "/v1/grants/"+r.grant(b).ID+"/approve", approver, nil)
				if r.status != http.StatusOK || r.grant(b).Status != "approved" {
					b.Fatalf("approve = %d %s", r.status, r.body)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			p50, p99 := percentile(lat, 50), percentile(lat, 99)
			b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkConcurrentApprovers measures ten approvers racing on grants
// that need two approvals: the cost of optimistic-concurrency retries.
func BenchmarkConcurrentApprovers(b *testing.B) {
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			e := newEnv(b, be)
			e.skipDocCheck = true
			body := map[string]any{"role": "db-super", "duration": "20m", "justification": "benchmark"}
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				id := e.call("POST", "/v1/requests", requester, body).grant(b).ID
				t0 := time.Now()
				var wg sync.WaitGroup
				for i := range numStaticApprovers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						e.call("POST", "/v1/grants/"+id+"/approve", staticApprover(i), nil)
					}()
				}
				wg.Wait()
				lat = append(lat, time.Since(t0))
			}
			b.ReportMetric(float64(percentile(lat, 50).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(lat, 99).Microseconds())/1000, "p99-ms")
		})
	}
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(min(i, len(s))-1, 0)]
}
