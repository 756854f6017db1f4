// Package examples holds elevate's example policy sets and the test that
// keeps them honest: examples/policies, a realistic organisation that must
// validate without a single diagnostic and whose policy tests must pass, and
// examples/weak-jit, the classic weak design, on which validate must report
// every weakness its README lists.
package examples
