package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestTraceHandlerAddsIDs: log records made inside a span carry its trace
// and span IDs; others do not.
func TestTraceHandlerAddsIDs(t *testing.T) {
	var buf bytes.Buffer
	logger, err := newLogger(&buf, TelemetryConfig{LogFormat: "json", LogLevel: "info"})
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(context.Background(), "op")
	logger.With("component", "x").InfoContext(ctx, "inside")
	span.End()
	logger.Info("outside")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 log lines, got %q", buf.String())
	}
	var in, out map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &in); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &out); err != nil {
		t.Fatal(err)
	}
	sc := span.SpanContext()
	if in["trace_id"] != sc.TraceID().String() || in["span_id"] != sc.SpanID().String() || in["component"] != "x" {
		t.Errorf("record inside the span: %v, want trace_id %s span_id %s", in, sc.TraceID(), sc.SpanID())
	}
	if _, ok := out["trace_id"]; ok {
		t.Errorf("record outside any span has a trace_id: %v", out)
	}
}

// otlpCollector records what OTLP/HTTP exporters send it.
type otlpCollector struct {
	mu     sync.Mutex
	bodies map[string][][]byte
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.bodies[r.URL.Path] = append(c.bodies[r.URL.Path], body)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (c *otlpCollector) contains(path, s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.bodies[path] {
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// TestOTLPExport runs the daemon with the standard OTLP variables pointing
// at a local collector: the spans of passes, provider calls and API
// requests, and the metrics, arrive over OTLP/HTTP.
func TestOTLPExport(t *testing.T) {
	t.Parallel()
	col := &otlpCollector{bodies: map[string][][]byte{}}
	cs := httptest.NewServer(col)
	defer cs.Close()
	dir := t.TempDir()
	env := append(serveEnv(t, dir),
		"OTEL_EXPORTER_OTLP_ENDPOINT="+cs.URL,
		"OTEL_METRIC_EXPORT_INTERVAL=300",
		"OTEL_BSP_SCHEDULE_DELAY=100",
		"OTEL_SERVICE_NAME=elevate-otlp-test")
	d := startServe(t, dir, env...)
	var g grantView
	if st := apiCall(t, d.url, engToken, "POST", "/v1/requests", map[string]string{"role": "sandbox", "duration": "5m", "justification": "otlp"}, &g); st != http.StatusCreated {
		t.Fatalf("request: %d", st)
	}
	waitGrantStatus(t, d.url, engToken, g.ID, "active", 10*time.Second)
	want := []struct{ path, s string }{
		{"/v1/traces", "reconcile.pass"},
		{"/v1/traces", "provider.apply"},
		{"/v1/traces", "POST /v1/requests"},
		{"/v1/traces", "elevate-otlp-test"},
		{"/v1/metrics", "elevate_provider_calls_total"},
		{"/v1/metrics", "elevate_reconcile_duration_seconds"},
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, w := range want {
		for !col.contains(w.path, w.s) {
			if time.Now().After(deadline) {
				t.Fatalf("the collector never received %q on %s\ndaemon:\n%s", w.s, w.path, daemonLogTail(d.stderr.String(), 20))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !strings.Contains(d.stderr.String(), `"otlp_traces":true`) {
		t.Errorf("the start-up log does not say OTLP traces are on:\n%s", d.stderr)
	}

	// A protocol this build does not export is refused at start.
	_, errOut, code := runElevate(t, dir, append(env, "ELEVATE_LISTEN="+freeAddr(t), "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"), "serve")
	if code != 2 || !strings.Contains(errOut, "http/protobuf") {
		t.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=grpc: exit %d, want 2 and a message naming http/protobuf\n%s", code, errOut)
	}
}
