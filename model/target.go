package model

import "fmt"

// Cloud names a cloud provider.
type Cloud string

// The clouds elevate manages.
const (
	CloudAWS   Cloud = "aws"
	CloudGCP   Cloud = "gcp"
	CloudAzure Cloud = "azure"
	// CloudMemory is the in-memory provider used by tests and dev mode.
	CloudMemory Cloud = "memory"
)

// Target is one cloud-side place a role grants access: a GCP resource and
// role, an AWS IAM role or Identity Center permission set in an account, or
// an Azure scope and role definition.
type Target struct {
	Cloud Cloud `json:"cloud"`
	// Scope is the unit of read-modify-write: a GCP resource name
	// ("projects/acme-prod"), an AWS account ("123456789012"), or an Azure
	// scope ("/subscriptions/…").
	Scope string `json:"scope"`
	// Role is the cloud role: "roles/cloudsql.admin", an IAM role name, a
	// permission set ARN, or an Azure role definition name or ID.
	Role string `json:"role"`
	// InstanceARN is set for AWS Identity Center targets.
	InstanceARN string `json:"instance_arn,omitempty"`
	// PIM is set for Azure targets granted through PIM schedules.
	PIM bool `json:"pim,omitempty"`
}

// String renders the target for logs and messages.
func (t Target) String() string {
	return fmt.Sprintf("%s:%s:%s", t.Cloud, t.Scope, t.Role)
}

// ScopeKey identifies the scope a target lives in across clouds.
func (t Target) ScopeKey() ScopeKey { return ScopeKey{Cloud: t.Cloud, Scope: t.Scope} }

// ScopeKey identifies one cloud scope: the batching unit of the executor.
type ScopeKey struct {
	Cloud Cloud  `json:"cloud"`
	Scope string `json:"scope"`
}

// String renders "cloud:scope".
func (k ScopeKey) String() string { return string(k.Cloud) + ":" + k.Scope }
