package providers_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/elevatehq/elevate/model"
	"github.com/elevatehq/elevate/providers"
	"github.com/elevatehq/elevate/providers/memory"
)

func TestFactories(t *testing.T) {
	fs := providers.Factories{
		model.CloudMemory: func(cfg providers.Config) (providers.Provider, error) {
			return memory.New(memory.Options{}), nil
		},
		model.CloudAWS: func(cfg providers.Config) (providers.Provider, error) {
			region, err := cfg.Setting("region")
			if err != nil {
				return nil, err
			}
			return nil, errors.New("no AWS in this test: " + region)
		},
	}
	p, err := fs.New(providers.Config{Cloud: model.CloudMemory})
	if err != nil || p.Cloud() != model.CloudMemory {
		t.Fatalf("New(memory) = %v, %v", p, err)
	}
	_, err = fs.New(providers.Config{Cloud: model.CloudGCP})
	if err == nil || !strings.Contains(err.Error(), `unknown cloud "gcp" (known: aws, memory)`) {
		t.Errorf("unknown cloud: %v", err)
	}
	_, err = fs.New(providers.Config{Cloud: model.CloudAWS})
	if err == nil || !strings.Contains(err.Error(), `building aws provider: provider aws: setting "region" is required`) {
		t.Errorf("missing setting: %v", err)
	}
	d, err := fs.Build(providers.Config{Cloud: model.CloudMemory}, providers.Decorators{})
	if err != nil || d.Cloud() != model.CloudMemory {
		t.Errorf("Build = %v, %v", d, err)
	}
	if _, err := (providers.Factories{}).New(providers.Config{Cloud: model.CloudAWS}); err == nil || !strings.Contains(err.Error(), "none configured") {
		t.Errorf("empty map: %v", err)
	}

	as := providers.AuditFactories{model.CloudMemory: func(providers.Config) (providers.AuditSource, error) {
		return memory.New(memory.Options{}), nil
	}}
	if _, err := as.New(providers.Config{Cloud: model.CloudMemory}); err != nil {
		t.Errorf("audit New: %v", err)
	}
	if _, err := as.New(providers.Config{Cloud: model.CloudAzure}); err == nil {
		t.Error("audit New of an unknown cloud succeeded")
	}
}
