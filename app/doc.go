// Package app is elevate's composition root: it builds the command tree and
// wires policies, state, providers, reconcile and the server together. It may
// depend on every other package; no package imports it.
package app
