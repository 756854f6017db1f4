package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// telemetry is the daemon's OpenTelemetry setup: a MeterProvider that
// serves Prometheus text on /metrics (and pushes OTLP when configured), a
// TracerProvider (exporting OTLP only when configured), and a slog logger
// that stamps records with the trace and span IDs of their context.
type telemetry struct {
	Meters  *sdkmetric.MeterProvider
	Tracers *sdktrace.TracerProvider
	// Metrics serves the Prometheus exposition format.
	Metrics http.Handler
	Logger  *slog.Logger
	// OTLPTraces and OTLPMetrics report whether OTLP export is on.
	OTLPTraces, OTLPMetrics bool
}

// otlpEnv reports whether the standard OTLP environment variables ask for
// export of a signal ("TRACES" or "METRICS").
func otlpEnv(getenv func(string) string, signal string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_"+signal+"_ENDPOINT") != ""
}

// checkOTLPProtocol refuses protocols this build does not include.
func checkOTLPProtocol(getenv func(string) string, signal string) error {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_" + signal + "_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := getenv(name); p != "" {
			if p != "http/protobuf" {
				return fmt.Errorf("%s=%s is not supported: elevate exports OTLP over http/protobuf (port 4318 on most collectors); unset it or set http/protobuf", name, p)
			}
			return nil
		}
	}
	return nil
}

// newTelemetry sets up logs, metrics and traces and installs them as the
// OpenTelemetry globals. Call shutdown to flush exporters.
func newTelemetry(ctx context.Context, cfg TelemetryConfig, logOut io.Writer, getenv func(string) string) (*telemetry, func(context.Context) error, error) {
	logger, err := newLogger(logOut, cfg)
	if err != nil {
		return nil, nil, err
	}
	// The resource: service.name from the configuration, then anything in
	// OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME (which win, as the
	// specification says).
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(cfg.ServiceName),
		semconv.ServiceVersion(Version),
	))
	if err != nil {
		return nil, nil, fmt.Errorf("building telemetry resource: %w", err)
	}
	if envRes, err := resource.New(ctx, resource.WithFromEnv()); err == nil {
		if merged, err := resource.Merge(res, envRes); err == nil {
			res = merged
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	promExp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, nil, fmt.Errorf("creating the Prometheus exporter: %w", err)
	}
	mopts := []sdkmetric.Option{
		sdkmetric.WithResource(res),
		sdkmetric.WithReader(promExp),
	}
	t := &telemetry{Logger: logger}
	var shutdowns []func(context.Context) error
	if otlpEnv(getenv, "METRICS") {
		if err := checkOTLPProtocol(getenv, "METRICS"); err != nil {
			return nil, nil, err
		}
		exp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("creating the OTLP metric exporter: %w", err)
		}
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
		t.OTLPMetrics = true
	}
	t.Meters = sdkmetric.NewMeterProvider(mopts...)
	shutdowns = append(shutdowns, t.Meters.Shutdown)

	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if otlpEnv(getenv, "TRACES") {
		if err := checkOTLPProtocol(getenv, "TRACES"); err != nil {
			return nil, nil, err
		}
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("creating the OTLP trace exporter: %w", err)
		}
		topts = append(topts, sdktrace.WithBatcher(exp))
		t.OTLPTraces = true
	}
	// Without an exporter spans are still created and sampled, so log
	// records carry trace IDs that tie the lines of one pass together.
	t.Tracers = sdktrace.NewTracerProvider(topts...)
	shutdowns = append(shutdowns, t.Tracers.Shutdown)

	otel.SetMeterProvider(t.Meters)
	otel.SetTracerProvider(t.Tracers)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("telemetry export failed", "error", err)
	}))
	t.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)})

	shutdown := func(ctx context.Context) error {
		var errs []error
		for i := len(shutdowns) - 1; i >= 0; i-- {
			if err := shutdowns[i](ctx); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	return t, shutdown, nil
}

// parseLogLevel reads debug, info, warn or error.
func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q is not one of debug, info, warn, error", s)
	}
	return l, nil
}

// newLogger returns the daemon's logger: JSON or text lines on w, with the
// trace and span IDs of the record's context.
func newLogger(w io.Writer, cfg TelemetryConfig) (*slog.Logger, error) {
	level := slog.LevelInfo
	if cfg.LogLevel != "" {
		l, err := parseLogLevel(cfg.LogLevel)
		if err != nil {
			return nil, err
		}
		level = l
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(traceHandler{h}), nil
}

// traceHandler adds trace_id and span_id to records logged with a context
// that carries a valid span.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// traceHTTP wraps h so every API request runs in a server span (joining
// the caller's trace when it sends traceparent); the server's request log
// and everything below it can then carry the trace ID.
func traceHTTP(tracer trace.Tracer, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, r.Method+" "+routeName(r.URL.Path), trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r.WithContext(ctx))
		span.SetAttributes(attribute.String("http.request.method", r.Method), attribute.Int("http.response.status_code", rec.status))
		if rec.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(rec.status))
		}
	})
}

// routeName collapses grant IDs so span names stay few.
func routeName(path string) string {
	if rest, ok := strings.CutPrefix(path, "/v1/grants/"); ok {
		if _, action, found := strings.Cut(rest, "/"); found {
			return "/v1/grants/{id}/" + action
		}
		return "/v1/grants/{id}"
	}
	return path
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// stderrIsTerminal reports whether the process's stderr is a terminal.
func stderrIsTerminal() bool {
	info, err := os.Stderr.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
