package reconcile

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

const instrumentationName = "elevate/reconcile"

// Metric names.
const (
	// MetricGrantsActive is a gauge of grants in status active, reported
	// by the leader.
	MetricGrantsActive = "elevate_grants_active"
	// MetricExpiryLag is a histogram of the time from a grant's expiry to
	// the cloud's confirmation that its bindings are gone.
	MetricExpiryLag = "elevate_expiry_lag_seconds"
	// MetricExpiryOverdue is a gauge of how long the oldest grant past its
	// expiry has been waiting for confirmed removal (0 when none): the lag
	// of grants not yet removed, which the histogram cannot show until
	// they are.
	MetricExpiryOverdue = "elevate_expiry_overdue_seconds"
	// MetricReconcileDuration is a histogram of pass durations, labelled
	// kind (full, targeted) and mode.
	MetricReconcileDuration = "elevate_reconcile_duration_seconds"
)

// Bucket boundaries, in seconds.
var (
	lagBuckets      = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600}
	durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
)

type instruments struct {
	lag      metric.Float64Histogram
	duration metric.Float64Histogram
	tracer   trace.Tracer
}

func newInstruments(e *Engine, mp metric.MeterProvider, tp trace.TracerProvider) (*instruments, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	m := mp.Meter(instrumentationName)
	lag, err := m.Float64Histogram(MetricExpiryLag, metric.WithUnit("s"),
		metric.WithDescription("Time from a grant's expiry to the cloud's confirmation that its bindings are removed."),
		metric.WithExplicitBucketBoundaries(lagBuckets...))
	if err != nil {
		return nil, fmt.Errorf("creating metric %s: %w", MetricExpiryLag, err)
	}
	dur, err := m.Float64Histogram(MetricReconcileDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of reconcile passes."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	if err != nil {
		return nil, fmt.Errorf("creating metric %s: %w", MetricReconcileDuration, err)
	}
	active, err := m.Int64ObservableGauge(MetricGrantsActive,
		metric.WithDescription("Grants in status active, as of the leader's last pass."))
	if err != nil {
		return nil, fmt.Errorf("creating metric %s: %w", MetricGrantsActive, err)
	}
	overdue, err := m.Float64ObservableGauge(MetricExpiryOverdue, metric.WithUnit("s"),
		metric.WithDescription("How long the oldest grant past its expiry has waited for confirmed removal; 0 when none."))
	if err != nil {
		return nil, fmt.Errorf("creating metric %s: %w", MetricExpiryOverdue, err)
	}
	// Only the leader reports the gauges, so that summing over replicas
	// counts each grant once.
	if _, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if !e.IsLeader() {
			return nil
		}
		o.ObserveInt64(active, e.activeGrants.Load())
		secs := 0.0
		if ns := e.oldestOverdue.Load(); ns != 0 {
			secs = max(0, e.clock.Now().Sub(time.Unix(0, ns)).Seconds())
		}
		o.ObserveFloat64(overdue, secs)
		return nil
	}, active, overdue); err != nil {
		return nil, fmt.Errorf("registering gauge callbacks: %w", err)
	}
	return &instruments{lag: lag, duration: dur, tracer: tp.Tracer(instrumentationName)}, nil
}
