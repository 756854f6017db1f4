package reconcile_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/policies"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/memory"
	"github.com/elevatehq/elevate/reconcile"
	"github.com/elevatehq/elevate/state"
)

// heapScopes is how many GCP projects the heap benchmark spreads its
// grants over (one role per project).
const heapScopes = 1000

// BenchmarkEngineHeap100k: 100,000 active grants (ELEVATE_BENCH_GRANTS
// overrides the count) over 1,000 GCP projects, in a SQLite store with
// their binding records, and their bindings in a memory provider. The
// engine runs its first full pass; the benchmark reports the Go heap the
// engine holds afterwards (HeapInuse after a GC, less the heap before the
// engine started: the provider's own copy of the bindings is not counted)
// and the peak heap in use during the pass, sampled every 10ms. The seeded
// store is kept as a template in the temporary directory, so only the
// first run pays for seeding. Run it with
//
//	go test ./reconcile -run XXX -bench EngineHeap100k -benchtime 1x
func BenchmarkEngineHeap100k(b *testing.B) {
	n := 100_000
	if v := os.Getenv("ELEVATE_BENCH_GRANTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("ELEVATE_BENCH_GRANTS=%q is not a positive number", v)
		}
	}
	ctx := context.Background()
	set := loadSet(b, heapPolicies())
	template := filepath.Join(os.TempDir(), fmt.Sprintf("elevate-heap-bench-%d-%d.db", n, heapScopes))
	if _, err := os.Stat(template); err != nil {
		seedStart := time.Now()
		seedHeapStore(b, template+".tmp", n)
		if err := os.Rename(template+".tmp", template); err != nil {
			b.Fatal(err)
		}
		b.Logf("seeded %d grants in %s", n, time.Since(seedStart).Round(time.Second))
	}
	for range b.N {
		b.StopTimer()
		dbPath := filepath.Join(b.TempDir(), "state.db")
		copyFile(b, template, dbPath)
		st, err := state.Open(ctx, "sqlite:"+dbPath)
		if err != nil {
			b.Fatal(err)
		}
		cloud := memory.New(memory.Options{Cloud: model.CloudGCP})
		for i := range n {
			id, p := heapGrant(i)
			if err := cloud.Put(model.Binding{Target: heapTarget(i), Principal: p, Owner: id,
				NotBefore: heapStarts, Expires: heapExpires}); err != nil {
				b.Fatal(err)
			}
		}
		base := heapInuse()
		engine, err := reconcile.NewEngine(reconcile.Options{
			Store: st, Providers: map[model.Cloud]providers.Provider{model.CloudGCP: cloud},
			Policies: func() *policies.Set { return set }, Holder: "bench", Logger: benchLogger(),
		})
		if err != nil {
			b.Fatal(err)
		}
		var peak atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
				}
			}
		})
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		b.StartTimer()
		passStart := time.Now()
		go func() { done <- engine.Run(runCtx) }()
		for engine.Status().Passes == 0 {
			if time.Since(passStart) > 10*time.Minute {
				b.Fatal("the first full pass did not end within 10 minutes")
			}
			time.Sleep(5 * time.Millisecond)
		}
		took := time.Since(passStart)
		b.StopTimer()
		close(stop)
		wg.Wait()
		st0 := engine.Status()
		if st0.LastError != "" || len(st0.ScopeErrors) > 0 || st0.LastChanges != (reconcile.ChangeCounts{}) {
			b.Fatalf("the first pass did not find everything in place: %+v", st0)
		}
		held := heapInuse()
		if held > base {
			held -= base
		} else {
			held = 0
		}
		pk := peak.Load()
		if pk > base {
			pk -= base
		} else {
			pk = 0
		}
		b.ReportMetric(float64(held)/(1<<20), "held-heap-MiB")
		b.ReportMetric(float64(pk)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(took.Seconds(), "first-pass-s")
		b.Logf("%d grants over %d scopes: first full pass %s; engine heap after it %d MiB, peak during it %d MiB (base %d MiB)",
			n, heapScopes, took.Round(time.Millisecond), held>>20, pk>>20, base>>20)
		if f := os.Getenv("ELEVATE_BENCH_HEAPPROFILE"); f != "" {
			writeHeapProfile(b, f)
		}
		cancel()
		<-done
		st.Close()
		runtime.KeepAlive(cloud)
	}
	b.ReportMetric(0, "ns/op")
}

var (
	heapStarts  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	heapExpires = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

func heapGrant(i int) (string, model.Principal) {
	return fmt.Sprintf("grant-%06d", i), model.MustPrincipal(fmt.Sprintf("user:u%06d@example.com", i))
}

func heapTarget(i int) model.Target {
	return model.Target{Cloud: model.CloudGCP, Scope: fmt.Sprintf("projects/p-%03d", i%heapScopes), Role: "roles/logging.viewer"}
}

func heapPolicies() string {
	var src strings.Builder
	roles := make([]string, heapScopes)
	for i := range heapScopes {
		roles[i] = fmt.Sprintf("%q", fmt.Sprintf("role-%03d", i))
		fmt.Fprintf(&src, "role \"role-%03d\" {\n  gcp {\n    resource = \"projects/p-%03d\"\n    role     = \"roles/logging.viewer\"\n  }\n}\n", i, i)
	}
	fmt.Fprintf(&src, "jit \"all\" {\n  roles = [%s]\n  requesters = [\"group:sre@example.com\"]\n  max_duration = \"1000000h\"\n  justification = false\n}\n", strings.Join(roles, ", "))
	return src.String()
}

// seedHeapStore stores n active grants and the binding records a daemon
// that granted them would have left.
func seedHeapStore(b *testing.B, path string, n int) {
	ctx := context.Background()
	os.Remove(path)
	st, err := state.Open(ctx, "sqlite:"+path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for i := range n {
		id, p := heapGrant(i)
		g := model.Grant{ID: id, Kind: model.KindJIT, Principal: p, Role: fmt.Sprintf("role-%03d", i%heapScopes), Policy: "all",
			Status: model.StatusActive, Justification: "seeded", Duration: 8 * time.Hour, RequestedAt: heapStarts,
			Starts: heapStarts, Expires: heapExpires}
		if _, err := st.CreateGrant(ctx, g, state.Change{Actor: p.String(), Action: "request"}); err != nil {
			b.Fatal(err)
		}
		bind := model.Binding{Target: heapTarget(i), Principal: p, Owner: id, NotBefore: heapStarts, Expires: heapExpires,
			Native: true, Raw: memory.MarkerPrefix + id}
		if err := st.PutBinding(ctx, state.BindingRecord{Binding: bind, State: state.BindingApplied}); err != nil {
			b.Fatal(err)
		}
	}
}

func copyFile(b *testing.B, from, to string) {
	in, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}
