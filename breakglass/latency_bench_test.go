package breakglass

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/elevatehq/elevate/state"
)

// BenchmarkDetectionLatency measures, for each of b.N records, the time
// from the record landing in the watched directory (a new file, written
// and renamed into place the way log shippers do) to the webhook receiver
// having the signed alert: the watcher running for real with a 1 s poll, a
// SQLite store and the webhook notifier. Records land at random points of
// the poll cycle. Run it with -benchtime 20x; it reports p50, p99 and max
// in milliseconds.
func BenchmarkDetectionLatency(b *testing.B) {
	r := &rig{dir: b.TempDir(), hook: newHook(b)}
	store, err := state.Open(b.Context(), "sqlite:"+filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	r.store = store
	r.set = loadSet(b, watcherPolicies)
	startWatcher(b, r, "bench", DefaultPoll)
	// Let the watcher take its lease and make its first poll.
	time.Sleep(1500 * time.Millisecond)

	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
		id := "lat-" + strconv.Itoa(i)
		// Two hours apart in event time: each record is its own incident.
		rec := ctLogin(id, "breakglass-alice", base.Add(time.Duration(i)*2*time.Hour), true)
		tmp := writeFile(b, r.dir, id+".jsonl.tmp", []byte(rec))
		landed := time.Now()
		if err := os.Rename(tmp, filepath.Join(r.dir, id+".jsonl")); err != nil {
			b.Fatal(err)
		}
		select {
		case a := <-r.hook.received:
			if a.Event == nil || a.Event.ID != id {
				b.Fatalf("alert for %+v, want %s", a.Event, id)
			}
			lat = append(lat, time.Since(landed))
		case <-time.After(10 * time.Second):
			b.Fatalf("no alert for record %s within 10s", id)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op")
}
