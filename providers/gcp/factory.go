package gcp

import (
	"net"
	"strings"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/elevatehq/elevate/providers"
)

// Settings the factories read from providers.Config.Settings.
const (
	// SettingEndpoint overrides the API endpoint (host:port) when
	// Config.Endpoint is empty.
	SettingEndpoint = "endpoint"
	// SettingInsecure = "true" connects without TLS or credentials, as to
	// an emulator; loopback endpoints imply it.
	SettingInsecure = "insecure"
	// SettingParents lists the audit source's parents, comma-separated.
	SettingParents = "parents"
	// SettingPrincipals lists the emails whose audit entries are read,
	// comma-separated (the break-glass accounts); empty reads all.
	SettingPrincipals = "principals"
	// SettingSelf lists elevate's own identities, comma-separated.
	SettingSelf = "self"
)

// Factory builds the GCP provider for providers.Factories: against
// Google's endpoints with Application Default Credentials, or, for an
// emulator endpoint (loopback, or insecure = "true"), over plain gRPC
// without authentication.
func Factory(cfg providers.Config) (providers.Provider, error) {
	endpoint, opts := clientOptions(cfg)
	return New(Config{Endpoint: endpoint, ClientOptions: opts})
}

// AuditFactory builds the GCP audit source for providers.AuditFactories.
// The parents setting is required.
func AuditFactory(cfg providers.Config) (providers.AuditSource, error) {
	parents, err := cfg.Setting(SettingParents)
	if err != nil {
		return nil, err
	}
	endpoint, opts := clientOptions(cfg)
	return NewAuditSource(AuditConfig{
		Endpoint: endpoint, ClientOptions: opts,
		Parents:    splitList(parents),
		Principals: splitList(cfg.Settings[SettingPrincipals]),
		Self:       splitList(cfg.Settings[SettingSelf]),
	})
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// clientOptions returns the endpoint and the options to reach it: none
// (Application Default Credentials) for Google, a plain connection without
// authentication for an emulator.
func clientOptions(cfg providers.Config) (string, []option.ClientOption) {
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = cfg.Settings[SettingEndpoint]
	}
	if endpoint == "" || !(cfg.Settings[SettingInsecure] == "true" || isLoopback(endpoint)) {
		return endpoint, nil
	}
	return "", EmulatorOptions(endpoint)
}

// EmulatorOptions returns client options for an emulator at addr
// (host:port): plain gRPC, no credentials.
func EmulatorOptions(addr string) []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

func isLoopback(endpoint string) bool {
	host := endpoint
	if h, _, err := net.SplitHostPort(endpoint); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// The factories fit the factory maps.
var (
	_ providers.Factory      = Factory
	_ providers.AuditFactory = AuditFactory
)
