package providers

// Decorators is the standard stack of wrappers the composition root puts
// around every provider.
type Decorators struct {
	Retry     RetryPolicy
	RateLimit RateLimit
	Telemetry Telemetry
}

// Decorate wraps p, outermost first, in retries, the rate limit and
// telemetry: every attempt waits for a token and is counted and traced on
// its own, so throttling shows in the metrics even when a retry succeeds.
func Decorate(p Provider, d Decorators) Provider {
	return WithRetry(WithRateLimit(WithTelemetry(p, d.Telemetry), d.RateLimit), d.Retry)
}

// Build builds the provider for cfg from fs and wraps it with d.
func (fs Factories) Build(cfg Config, d Decorators) (Provider, error) {
	p, err := fs.New(cfg)
	if err != nil {
		return nil, err
	}
	return Decorate(p, d), nil
}
