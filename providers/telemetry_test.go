package providers_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/memory"
)

type telemetry struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tel    providers.Telemetry
}

func newTelemetry() *telemetry {
	r := sdkmetric.NewManualReader()
	sr := tracetest.NewSpanRecorder()
	return &telemetry{reader: r, spans: sr, tel: providers.Telemetry{
		MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)),
		TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr)),
	}}
}

// calls returns elevate_provider_calls_total by "op/result".
func (tm *telemetry) calls(t *testing.T) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tm.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != providers.MetricCalls {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				cloud, _ := dp.Attributes.Value("cloud")
				op, _ := dp.Attributes.Value("op")
				res, _ := dp.Attributes.Value("result")
				if cloud.AsString() != "memory" {
					t.Errorf("cloud label %q", cloud.AsString())
				}
				out[op.AsString()+"/"+res.AsString()] += dp.Value
			}
		}
	}
	return out
}

func TestTelemetry(t *testing.T) {
	ctx := context.Background()
	mem := memory.New(memory.Options{})
	tm := newTelemetry()
	p := providers.WithTelemetry(mem, tm.tel)
	if p.Cloud() != model.CloudMemory {
		t.Fatal("Cloud not passed through")
	}
	p.Observe(ctx, scope, nil)
	mem.FailNext(providers.Transient(memory.ErrUnavailable))
	p.Observe(ctx, scope, nil)
	mem.AddUnmanaged(model.Binding{Target: target, Principal: alice})
	standing := model.Binding{Target: target, Principal: alice}
	res, err := p.Apply(ctx, scope, []model.Change{creates(1)[0], {Reason: model.ReasonExpired, Old: &standing}})
	if err != nil || res[1].Err == nil {
		t.Fatalf("Apply: %v %+v (the delete of an unmanaged binding must fail per change, not as a batch)", err, res)
	}
	got := tm.calls(t)
	want := map[string]int64{"observe/ok": 1, "observe/transient": 1, "apply/permanent": 1}
	if len(got) != len(want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("calls[%s] = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	spans := tm.spans.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3", len(spans))
	}
	wantSpans := []struct {
		name string
		code codes.Code
	}{{"provider.observe", codes.Unset}, {"provider.observe", codes.Error}, {"provider.apply", codes.Error}}
	for i, w := range wantSpans {
		s := spans[i]
		if s.Name() != w.name || s.Status().Code != w.code {
			t.Errorf("span %d: %s %v, want %s %v", i, s.Name(), s.Status().Code, w.name, w.code)
		}
		if !hasAttr(s.Attributes(), attribute.String("elevate.scope", scope.Scope)) {
			t.Errorf("span %d lacks the scope attribute: %v", i, s.Attributes())
		}
	}
	if !hasAttr(spans[2].Attributes(), attribute.Int("elevate.changes_failed", 1)) {
		t.Errorf("apply span attributes %v", spans[2].Attributes())
	}
}

func hasAttr(attrs []attribute.KeyValue, want attribute.KeyValue) bool {
	for _, a := range attrs {
		if a == want {
			return true
		}
	}
	return false
}

func TestDecorateCountsEveryAttempt(t *testing.T) {
	mem := memory.New(memory.Options{})
	mem.FailNext(providers.Throttled(memory.ErrThrottled, time.Second), providers.Throttled(memory.ErrThrottled, time.Second))
	tm := newTelemetry()
	s := &sleeper{}
	p := providers.Decorate(mem, providers.Decorators{
		Retry:     policy(s, 5),
		RateLimit: providers.RateLimit{PerSecond: 1000, Burst: 10},
		Telemetry: tm.tel,
	})
	if _, err := p.Observe(context.Background(), scope, nil); err != nil {
		t.Fatal(err)
	}
	got := tm.calls(t)
	if got["observe/transient"] != 2 || got["observe/ok"] != 1 {
		t.Errorf("calls %v, want 2 transient attempts and 1 ok", got)
	}
	if len(s.waits) != 2 || s.waits[0] < time.Second {
		t.Errorf("waits %v, want two waits honouring Retry-After 1s", s.waits)
	}
}
