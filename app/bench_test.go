package app

import (
	"context"
	"encoding/json"
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
	// Every request is self-service, so approved at once: once the store
	// holds no approved grant, all of them are active there. The leader's
	// elevate_grants_active gauge must agree.
	for {
		var l struct {
			Grants []json.RawMessage `json:"grants"`
		}
		st, err := tryAPI(base, engToken, "GET", "/v1/grants?status=approved&limit=1", nil, &l)
		if err != nil || st != http.StatusOK {
			b.Fatalf("listing approved grants: %d %v", st, err)
		}
		if v, ok := metricValue(b, base, "elevate_grants_active"); ok && len(l.Grants) == 0 {
			if int(v) < before+len(ids) {
				b.Fatalf("every grant is active in the store, but elevate_grants_active says %d, want %d", int(v), before+len(ids))
			}
			break
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("%d accepted grants did not all become active", len(ids))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ids, reqRate, time.Since(start)
}

// benchScopes is how many GCP projects BenchmarkDaemonRSS100k spreads its
// grants over, as a real organisation would (a GCP allow policy holds at
// most 1,500 principals and 100 conditional bindings);
// ELEVATE_BENCH_SCOPES overrides it, and ELEVATE_BENCH_SCOPES=1 puts every
// binding in one project, the worst case for one read.
const benchScopes = 1000

// bulkPolicies returns one self-service role per scope, bulk-NNNN with
// one target in projects/bulk-NNNN, for the grants the RSS benchmark
// seeds.
func bulkPolicies(scopes int) string {
	var src strings.Builder
	roles := make([]string, scopes)
	for i := range scopes {
		roles[i] = strconv.Quote(bulkRole(i))
		fmt.Fprintf(&src, "role %q {\n  description = \"Many grants\"\n  gcp {\n    resource = %q\n    role     = \"roles/logging.viewer\"\n  }\n}\n\n",
			bulkRole(i), bulkScope(i))
	}
	fmt.Fprintf(&src, "jit \"bulk-self\" {\n  description  = \"Self-service bulk access\"\n  roles        = [%s]\n  requesters   = [\"group:eng@example.com\"]\n  max_duration = \"8h\"\n}\n",
		strings.Join(roles, ", "))
	return src.String()
}

func bulkRole(i int) string  { return fmt.Sprintf("bulk-%04d", i) }
func bulkScope(i int) string { return fmt.Sprintf("projects/bulk-%04d", i) }

// benchCount reads a positive count from the environment variable name,
// or returns def.
func benchCount(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q is not a positive number", name, v)
	}
	return n
}

// BenchmarkDaemonRSS100k seeds a SQLite store with 100,000 active grants
// (ELEVATE_BENCH_GRANTS overrides the count) spread over 1,000 GCP
// projects (ELEVATE_BENCH_SCOPES overrides that; 1 puts them all in one)
// and a memory emulator with their bindings, starts the daemon on them,
// waits for its first full pass (which observes every binding and plans
// against every grant), and reports the daemon's resident memory (VmRSS
// and its peak VmHWM from /proc), the time to that first pass, and
// request-to-active latency with that many grants live. The seeded store
// is kept as a template in the temporary directory, so only the first run
// of a layout spends minutes seeding it. Run it with
//
//	go test ./app -run '^$' -bench DaemonRSS100k -benchtime 1x
func BenchmarkDaemonRSS100k(b *testing.B) {
	n := benchCount(b, "ELEVATE_BENCH_GRANTS", 100_000)
	scopes := benchCount(b, "ELEVATE_BENCH_SCOPES", benchScopes)
	elevateBin(b) // build first: a build error shows before minutes of seeding
	dir := b.TempDir()
	stateURL := "sqlite:" + filepath.Join(dir, "elevate.db")
	emu := newMemoryEmulator([]model.Cloud{model.CloudGCP, model.CloudAWS}, false)
	es := httptest.NewServer(emu)
	defer es.Close()

	starts := time.Now().UTC().Truncate(time.Second)
	template := filepath.Join(os.TempDir(), fmt.Sprintf("elevate-rss-bench-%d-%d.db", n, scopes))
	if st, err := os.Stat(template); err == nil && time.Since(st.ModTime()) < 6*time.Hour {
		// The template's grants stay active for 8 hours from seeding.
		var err error
		if starts, err = readSeedTime(template); err != nil {
			b.Fatal(err)
		}
	} else {
		seedStart := time.Now()
		os.Remove(template + ".tmp")
		seedGrants(b, "sqlite:"+template+".tmp", n, scopes, starts)
		if err := os.WriteFile(template+".time", []byte(starts.Format(time.RFC3339)), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(template+".tmp", template); err != nil {
			b.Fatal(err)
		}
		b.Logf("seeded %d active grants over %d scopes in %s", n, scopes, time.Since(seedStart).Round(time.Second))
	}
	copyTemplate(b, template, filepath.Join(dir, "elevate.db"))
	for i := range n {
		if err := emu.providers[model.CloudGCP].Put(seedBinding(i, scopes, starts)); err != nil {
			b.Fatal(err)
		}
	}

	policies := writeTestPolicies(b, dir)
	if err := os.WriteFile(filepath.Join(policies, "bulk.hcl"), []byte(bulkPolicies(scopes)), 0o644); err != nil {
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
		b.Logf("%d active grants over %d scopes: first full pass done %s after start; VmRSS %d MiB (VmHWM %d MiB); after 50 more requests VmRSS %d MiB (VmHWM %d MiB), Go heap in use %d MiB, next GC at %d MiB; request-to-active p50 %s p99 %s",
			n, scopes, firstPass.Round(time.Millisecond), rss>>10, hwm>>10, rssAfter>>10, hwmAfter>>10, int64(inuse)>>20, int64(goal)>>20,
			percentile(lat, 0.5).Round(time.Millisecond), percentile(lat, 0.99).Round(time.Millisecond))
		if errs := d.stderr.String(); strings.Contains(errs, `"level":"ERROR"`) {
			b.Errorf("the daemon logged errors:\n%s", daemonLogTail(errs, 20))
		}
		if f := os.Getenv("ELEVATE_BENCH_STDERR"); f != "" {
			// With GODEBUG=gctrace=1, the daemon's garbage collections.
			if err := os.WriteFile(f, []byte(d.stderr.String()), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(inuse/(1<<20), "heap-inuse-MiB")
		b.ReportMetric(float64(rss)/1024, "rss-MiB")
		b.ReportMetric(float64(rssAfter)/1024, "rss-after-MiB")
		b.ReportMetric(float64(max(hwm, hwmAfter))/1024, "hwm-MiB")
		b.ReportMetric(firstPass.Seconds(), "first-pass-s")
		b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
		d.kill9()
	}
	b.ReportMetric(0, "ns/op")
}

// seedBinding is the binding of seeded grant i.
func seedBinding(i, scopes int, starts time.Time) model.Binding {
	id, p := seedGrantID(i)
	return model.Binding{Target: model.Target{Cloud: model.CloudGCP, Scope: bulkScope(i % scopes), Role: "roles/logging.viewer"},
		Principal: p, Owner: id, NotBefore: starts, Expires: starts.Add(8 * time.Hour)}
}

func seedGrantID(i int) (string, model.Principal) {
	return fmt.Sprintf("bulk-%06d", i), model.MustPrincipal(fmt.Sprintf("user:u%06d@example.com", i))
}

// seedGrants stores n active grants of the bulk roles and their binding
// records, as a daemon that granted them would have left things.
func seedGrants(b *testing.B, stateURL string, n, scopes int, starts time.Time) {
	ctx := context.Background()
	store, err := state.Open(ctx, stateURL)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	expires := starts.Add(8 * time.Hour)
	var done atomic.Int64
	for i := range n {
		id, p := seedGrantID(i)
		g := model.Grant{ID: id, Kind: model.KindJIT, Principal: p, Role: bulkRole(i % scopes), Policy: "bulk-self",
			Status: model.StatusActive, Justification: "seeded", Duration: 8 * time.Hour, RequestedAt: starts,
			Starts: starts, Expires: expires}
		if _, err := store.CreateGrant(ctx, g, state.Change{Actor: p.String(), Action: "request"}); err != nil {
			b.Fatal(err)
		}
		bind := seedBinding(i, scopes, starts)
		bind.Native, bind.Raw = true, "elevate:"+g.ID
		if err := store.PutBinding(ctx, state.BindingRecord{Binding: bind, State: state.BindingApplied}); err != nil {
			b.Fatal(err)
		}
		if done.Add(1)%20000 == 0 {
			b.Logf("seeded %d grants", done.Load())
		}
	}
}

// readSeedTime reads when a template's grants start.
func readSeedTime(template string) (time.Time, error) {
	raw, err := os.ReadFile(template + ".time")
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the seed time of %s (delete the template to seed again): %w", template, err)
	}
	return time.Parse(time.RFC3339, strings.TrimSpace(string(raw)))
}

// copyTemplate copies a closed SQLite database (and its write-ahead log,
// if one was left) to path.
func copyTemplate(b *testing.B, from, to string) {
	for _, suffix := range []string{"", "-wal"} {
		raw, err := os.ReadFile(from + suffix)
		if suffix != "" && os.IsNotExist(err) {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(to+suffix, raw, 0o644); err != nil {
			b.Fatal(err)
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
