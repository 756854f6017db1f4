package providers

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/elevatehq/elevate/model"
)

// Config configures one provider or audit source instance.
type Config struct {
	Cloud model.Cloud
	// Endpoint overrides the cloud API endpoint (an emulator in tests and
	// dev mode); empty means the cloud's real endpoint.
	Endpoint string
	// Settings holds provider-specific options by name (region, tenant,
	// organisation, queue URL, …).
	Settings map[string]string
}

// Setting returns the named setting, or an error saying it must be set.
func (c Config) Setting(name string) (string, error) {
	v := c.Settings[name]
	if v == "" {
		return "", fmt.Errorf("provider %s: setting %q is required: add it to the provider's configuration", c.Cloud, name)
	}
	return v, nil
}

// Factory builds a provider from its configuration.
type Factory func(cfg Config) (Provider, error)

// AuditFactory builds an audit source from its configuration.
type AuditFactory func(cfg Config) (AuditSource, error)

// Factories maps each cloud to its provider constructor. The composition
// root builds the map explicitly; nothing registers itself from init().
type Factories map[model.Cloud]Factory

// New builds the provider for cfg.Cloud.
func (fs Factories) New(cfg Config) (Provider, error) {
	f, ok := fs[cfg.Cloud]
	if !ok {
		return nil, fmt.Errorf("building provider: unknown cloud %q (known: %s)", cfg.Cloud, known(fs))
	}
	p, err := f(cfg)
	if err != nil {
		return nil, fmt.Errorf("building %s provider: %w", cfg.Cloud, err)
	}
	return p, nil
}

// AuditFactories maps each cloud to its audit source constructor.
type AuditFactories map[model.Cloud]AuditFactory

// New builds the audit source for cfg.Cloud.
func (fs AuditFactories) New(cfg Config) (AuditSource, error) {
	f, ok := fs[cfg.Cloud]
	if !ok {
		return nil, fmt.Errorf("building audit source: unknown cloud %q (known: %s)", cfg.Cloud, known(fs))
	}
	s, err := f(cfg)
	if err != nil {
		return nil, fmt.Errorf("building %s audit source: %w", cfg.Cloud, err)
	}
	return s, nil
}

func known[V any](m map[model.Cloud]V) string {
	names := make([]string, 0, len(m))
	for c := range maps.Keys(m) {
		names = append(names, string(c))
	}
	slices.Sort(names)
	if len(names) == 0 {
		return "none configured"
	}
	return strings.Join(names, ", ")
}
