// Package policies implements elevate's HCL policy language: loading a
// directory of .hcl files into an immutable Set, diagnostics with source
// ranges, the design lint rules of POLICY.md, request evaluation shared by
// the API, `elevate explain` and `elevate test`, and canonical formatting.
//
// Nothing here talks to a cloud or reads the clock: callers pass "now".
package policies
