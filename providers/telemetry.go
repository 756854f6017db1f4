package providers

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/elevatehq/elevate/model"
)

const instrumentationName = "github.com/elevatehq/elevate/providers"

// MetricCalls is the counter of provider calls, labelled cloud, op
// (observe, apply) and result (ok, transient, permanent).
const MetricCalls = "elevate_provider_calls_total"

// Telemetry says where the telemetry decorator reports; nil fields use the
// global OpenTelemetry providers (no-ops until the daemon installs real
// ones).
type Telemetry struct {
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
}

// WithTelemetry wraps p so that every call gets a span and counts in
// elevate_provider_calls_total. Put it inside WithRetry to count each
// attempt, which is what shows throttling.
func WithTelemetry(p Provider, tel Telemetry) Provider {
	mp, tp := tel.MeterProvider, tel.TracerProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	calls, err := mp.Meter(instrumentationName).Int64Counter(MetricCalls,
		metric.WithDescription("Calls to cloud providers by cloud, operation and result."))
	if err != nil {
		otel.Handle(err)
		calls, _ = noop.NewMeterProvider().Meter(instrumentationName).Int64Counter(MetricCalls)
	}
	return &instrumented{next: p, calls: calls, tracer: tp.Tracer(instrumentationName)}
}

type instrumented struct {
	next   Provider
	calls  metric.Int64Counter
	tracer trace.Tracer
}

func (i *instrumented) Cloud() model.Cloud { return i.next.Cloud() }

func (i *instrumented) start(ctx context.Context, op string, scope model.ScopeKey, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return i.tracer.Start(ctx, "provider."+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append(attrs,
			attribute.String("elevate.cloud", string(scope.Cloud)),
			attribute.String("elevate.scope", scope.Scope))...))
}

func (i *instrumented) end(ctx context.Context, span trace.Span, op, result string, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.SetAttributes(attribute.String("elevate.result", result))
	span.End()
	i.calls.Add(ctx, 1, metric.WithAttributes(
		attribute.String("cloud", string(i.next.Cloud())),
		attribute.String("op", op),
		attribute.String("result", result)))
}

func (i *instrumented) Observe(ctx context.Context, scope model.ScopeKey, targets []model.Target) ([]model.Binding, error) {
	ctx, span := i.start(ctx, "observe", scope, attribute.Int("elevate.targets", len(targets)))
	bs, err := i.next.Observe(ctx, scope, targets)
	span.SetAttributes(attribute.Int("elevate.bindings", len(bs)))
	i.end(ctx, span, "observe", resultOf(err), err)
	return bs, err
}

func (i *instrumented) Apply(ctx context.Context, scope model.ScopeKey, changes []model.Change) ([]Result, error) {
	ctx, span := i.start(ctx, "apply", scope, attribute.Int("elevate.changes", len(changes)))
	res, err := i.next.Apply(ctx, scope, changes)
	result, failed := resultOf(err), 0
	var first error
	for _, r := range res {
		if r.Err == nil {
			continue
		}
		failed++
		if first == nil {
			first = r.Err
		}
		if worse(resultOf(r.Err), result) {
			result = resultOf(r.Err)
		}
	}
	span.SetAttributes(attribute.Int("elevate.changes_failed", failed))
	spanErr := err
	if spanErr == nil {
		spanErr = first
	}
	i.end(ctx, span, "apply", result, spanErr)
	return res, err
}

// Call results, from best to worst.
const (
	resultOK        = "ok"
	resultTransient = "transient"
	resultPermanent = "permanent"
)

func resultOf(err error) string {
	switch {
	case err == nil:
		return resultOK
	case IsTransient(err):
		return resultTransient
	default:
		return resultPermanent
	}
}

func worse(a, b string) bool { return rank(a) > rank(b) }

func rank(result string) int {
	switch result {
	case resultTransient:
		return 1
	case resultPermanent:
		return 2
	}
	return 0
}
