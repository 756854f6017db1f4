// Package reconcile decides what elevate changes in the clouds and makes the
// change.
//
// The decisions are pure: Desired computes the bindings that should exist
// from the policy set, the grants and the time; Plan compares them with the
// bindings the providers observed and returns the changes and findings, with
// a reason code for each; PolicyOps says what the policy set asks of the
// stored grants (temporary blocks synced into grants, just-in-time grants
// re-evaluated after a policy change). None of them performs I/O or reads
// the clock.
//
// The Engine applies them. One replica at a time holds the "reconcile"
// lease and runs the loop: an expiry scheduler (a heap of grant starts and
// expiries) wakes it at the next instant, a Trigger, a poll for grants
// other replicas changed, a failing scope's retry, or the periodic full
// resync; each pass observes the scopes due, plans them, applies each
// scope's changes as one provider batch (scopes in parallel, so a slow or
// failing one holds up only itself), and moves grants on once the cloud
// confirms: approved → active, → expired, → failed. Store writes go through
// a view fenced with the lease, so a deposed leader cannot write. Time
// comes from an injected Clock; clock.go holds the only wall-clock reads.
package reconcile
