// Package archtest holds tests that keep the architecture legible: the
// dependency direction of ARCHITECTURE.md and a doc comment on every package.
package archtest
