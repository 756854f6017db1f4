package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/state"
)

// Benchmarks of the real daemon (make bench). Each runs elevate serve as a
// child process and talks to it over HTTP like a client would.

// benchBackends are the stores the daemon benchmarks run on; PostgreSQL
// only when ELEVATE_TEST_POSTGRES is set.
func benchBackends(b *testing.B) []struct {
	name string
	url  func(b *testing.B, dir string) string
} {
	return []struct {
		name string
		url  func(b *testing.B, dir string) string
	}{
		{"sqlite", func(b *testing.B, dir string) string { return "sqlite:" + filepath.Join(dir, "elevate.db") }},
		{"postgres", func(b *testing.B, dir string) string { return pgSchemaURL(b) }},
	}
}

// benchDaemon starts a daemon on stateURL with the in-process memory
// provider and waits until it is ready.
func benchDaemon(b *testing.B, dir, stateURL string, extra ...string) *proc {
	env := append([]string{
		"ELEVATE_POLICIES=" + writeTestPolicies(b, dir),
		"ELEVATE_STATE=" + stateURL,
		"ELEVATE_STATIC_TOKENS=" + testStaticTokens(),
		"ELEVATE_MEMORY_CLOUDS=gcp,aws",
		"ELEVATE_LOG_LEVEL=warn",
	}, extra...)
	d := startServe(b, dir, env...)
	d.waitHTTP(b, "/readyz", http.StatusOK, 60*time.Second)
	return d
}

// requestToActive requests the self-service sandbox role and polls until
// the grant is active, returning the time from sending the request to
// seeing it active.
func requestToActive(b *testing.B, base string) time.Duration {
	start := time.Now()
	var g grantView
	if st := apiCall(b, base, engToken, "POST", "/v1/requests",
		map[string]string{"role": "sandbox", "duration": "1h", "justification": "benchmark"}, &g); st != http.StatusCreated {
		b.Fatalf("request: %d", st)
	}
	for {
		var d grantDetail
		apiCall(b, base, engToken, "GET", "/v1/grants/"+g.ID, nil, &d)
		switch d.Grant.Status {
		case "active":
			return time.Since(start)
		case "approved":
		default:
			b.Fatalf("grant %s became %s", g.ID, d.Grant.Status)
		}
		time.Sleep(time.Millisecond)
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// latencySamples is how many requests one benchmark iteration measures.
const latencySamples = 300

// BenchmarkRequestToActive measures the latency from a self-service
// request (POST /v1/requests) to the grant being active in the cloud (the
// in-memory provider), as a client polling GET /v1/grants/{id} every
// millisecond sees it, one request at a time.
func BenchmarkRequestToActive(b *testing.B) {
	for _, be := range benchBackends(b) {
		b.Run(be.name, func(b *testing.B) {
			dir := b.TempDir()
			d := benchDaemon(b, dir, be.url(b, dir))
			for range 10 { // warm up connections and caches
				requestToActive(b, d.url)
			}
			var lat []time.Duration
			b.ResetTimer()
			for range b.N {
				for range latencySamples {
					lat = append(lat, requestToActive(b, d.url))
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// sustainedFor is how long BenchmarkSustainedRequests sends requests.
const sustainedFor = 5 * time.Second

// BenchmarkSustainedRequests sends self-service requests from 8 clients at
// once for sustainedFor and reports the requests the API accepted per
// second, and how many grants per second became active (from the first
// request to the last activation).
func BenchmarkSustainedRequests(b *testing.B) {
	for _, be := range benchBackends(b) {
		b.Run(be.name, func(b *testing.B) {
			dir := b.TempDir()
			d := benchDaemon(b, dir, be.url(b, dir))
			var accepted, activated float64
			b.ResetTimer()
			for range b.N {
				ids, reqRate, took := sustained(b, d.url, 8, sustainedFor)
				accepted += reqRate
				activated += float64(len(ids)) / took.Seconds()
			}
			b.StopTimer()
			b.ReportMetric(accepted/float64(b.N), "requests/s")
			b.ReportMetric(activated/float64(b.N), "activations/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// sustained runs the load and waits until every accepted grant is active.
func sustained(b *testing.B, base string, clients int, dur time.Duration) (ids []string, reqRate float64, took time.Duration) {
	v, _ := metricValue(b, base, "elevate_grants_active")
	before := int(v)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(dur)
	for range clients {
		wg.Go(func() {
			for time.Now().Before(stop) {
				var g grantView
				st, err := tryAPI(base, engToken, "POST", "/v1/requests",
					map[string]string{"role": "sandbox", "duration": "1h", "justification": "benchmark"}, &g)
				if err != nil || st != http.StatusCreated {
					b.Errorf("request: %d %v", st, err)
					return
				}
				mu.Lock()
				ids = append(ids, g.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	reqRate = float64(len(ids)) / time.Since(start).Seconds()
	// The leader's elevate_grants_active gauge counts every active grant
	// as of its last pass.
	for {
		if v, ok := metricValue(b, base, "elevate_grants_active"); ok && int(v) >= before+len(ids) {
			break
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("%d accepted grants did not all become active", len(ids))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ids, reqRate, time.Since(start)
}

// bulkPolicies adds a self-service role with one target for the grants
// the RSS benchmark seeds.
const bulkPolicies = `
role "bulk" {
  description = "Many grants"
  gcp {
    resource = "projects/bulk"
    role     = "roles/logging.viewer"
  }
}

jit "bulk-self" {
  description  = "Self-service bulk access"
  roles        = ["bulk"]
  requesters   = ["group:eng@example.com"]
  max_duration = "8h"
}
`

// BenchmarkDaemonRSS100k seeds a SQLite store with 100,000 active grants
// (ELEVATE_BENCH_GRANTS overrides the count) and a memory emulator with
// their bindings, starts the daemon on them, waits for its first full
// pass (which observes every binding and plans against every grant), and
// reports the daemon's resident memory (VmRSS and its peak VmHWM from
// /proc), the time to that first pass, and request-to-active latency with
// that many grants live.
func BenchmarkDaemonRSS100k(b *testing.B) {
	n := 100_000
	if v := os.Getenv("ELEVATE_BENCH_GRANTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("ELEVATE_BENCH_GRANTS=%q is not a positive number", v)
		}
	}
	dir := b.TempDir()
	stateURL := "sqlite:" + filepath.Join(dir, "elevate.db")
	emu := newMemoryEmulator([]model.Cloud{model.CloudGCP, model.CloudAWS}, false)
	es := httptest.NewServer(emu)
	defer es.Close()

	seedStart := time.Now()
	seedGrants(b, stateURL, emu, n)
	b.Logf("seeded %d active grants and their bindings in %s", n, time.Since(seedStart).Round(time.Second))

	policies := writeTestPolicies(b, dir)
	if err := os.WriteFile(filepath.Join(policies, "bulk.hcl"), []byte(bulkPolicies), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		d := startServe(b, dir,
			"ELEVATE_POLICIES="+policies, "ELEVATE_STATE="+stateURL, "ELEVATE_STATIC_TOKENS="+testStaticTokens(),
			"ELEVATE_MEMORY_CLOUDS=gcp,aws", "ELEVATE_MEMORY_ENDPOINT="+es.URL, "ELEVATE_LOG_LEVEL=warn")
		for {
			if v, ok := metricValue(b, d.url, "elevate_grants_active"); ok && int(v) >= n {
				break
			}
			if time.Since(start) > 20*time.Minute {
				b.Fatalf("the daemon did not report %d active grants\n%s", n, daemonLogTail(d.stderr.String(), 20))
			}
			time.Sleep(100 * time.Millisecond)
		}
		firstPass := time.Since(start)
		rss, hwm := procMemory(b, d.cmd.Process.Pid)
		var lat []time.Duration
		for range 50 {
			lat = append(lat, requestToActive(b, d.url))
		}
		rssAfter, hwmAfter := procMemory(b, d.cmd.Process.Pid)
		// The Go heap as the daemon's /metrics reports it: in use (live
		// plus garbage not yet collected) and the goal of the next GC
		// (twice the live heap of the last one, unless the memory limit
		// caps it).
		inuse, _ := metricValue(b, d.url, "go_memstats_heap_inuse_bytes")
		goal, _ := metricValue(b, d.url, "go_memstats_next_gc_bytes")
		b.Logf("%d active grants: first full pass done %s after start; VmRSS %d MiB (VmHWM %d MiB); after 50 more requests VmRSS %d MiB (VmHWM %d MiB), Go heap in use %d MiB, next GC at %d MiB; request-to-active p50 %s p99 %s",
			n, firstPass.Round(time.Millisecond), rss>>10, hwm>>10, rssAfter>>10, hwmAfter>>10, int64(inuse)>>20, int64(goal)>>20,
			percentile(lat, 0.5).Round(time.Millisecond), percentile(lat, 0.99).Round(time.Millisecond))
		b.ReportMetric(inuse/(1<<20), "heap-inuse-MiB")
		b.ReportMetric(float64(rss)/1024, "rss-MiB")
		b.ReportMetric(float64(max(hwm, hwmAfter))/1024, "hwm-MiB")
		b.ReportMetric(firstPass.Seconds(), "first-pass-s")
		b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
		d.kill9()
	}
	b.ReportMetric(0, "ns/op")
}

// seedGrants stores n active grants of role bulk, their binding records,
// and puts their bindings in the emulator, as a daemon that granted them
// would have left things.
func seedGrants(b *testing.B, stateURL string, emu *memoryEmulator, n int) {
	ctx := context.Background()
	store, err := state.Open(ctx, stateURL)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	target := model.Target{Cloud: model.CloudGCP, Scope: "projects/bulk", Role: "roles/logging.viewer"}
	starts := time.Now().UTC().Truncate(time.Second)
	expires := starts.Add(8 * time.Hour)
	var done atomic.Int64
	for i := range n {
		p := model.MustPrincipal(fmt.Sprintf("user:u%06d@example.com", i))
		g := model.Grant{ID: fmt.Sprintf("bulk-%06d", i), Kind: model.KindJIT, Principal: p, Role: "bulk", Policy: "bulk-self",
			Status: model.StatusActive, Justification: "seeded", Duration: 8 * time.Hour, RequestedAt: starts,
			Starts: starts, Expires: expires}
		if _, err := store.CreateGrant(ctx, g, state.Change{Actor: p.String(), Action: "request"}); err != nil {
			b.Fatal(err)
		}
		bind := model.Binding{Target: target, Principal: p, Owner: g.ID, NotBefore: starts, Expires: expires}
		if err := emu.providers[model.CloudGCP].Put(bind); err != nil {
			b.Fatal(err)
		}
		bind.Native, bind.Raw = true, "elevate:"+g.ID
		if err := store.PutBinding(ctx, state.BindingRecord{Binding: bind, State: state.BindingApplied}); err != nil {
			b.Fatal(err)
		}
		if done.Add(1)%20000 == 0 {
			b.Logf("seeded %d grants", done.Load())
		}
	}
}

// procMemory reads VmRSS and VmHWM (KiB) of a process from /proc.
func procMemory(b *testing.B, pid int) (rss, hwm int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Skipf("reading /proc/%d/status (Linux only): %v", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm
}
