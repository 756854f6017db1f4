// Package reconcile decides what elevate changes in the clouds. Desired
// computes the bindings that should exist from the policy set, the grants
// and the time; Plan compares them with the bindings the providers observed
// and returns the changes and findings, with a reason code for each, as
// pure data. Nothing here performs I/O or reads the clock: the executor and
// scheduler that apply plans live beside it and inject both.
package reconcile
