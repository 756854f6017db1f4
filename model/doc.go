// Package model holds elevate's value types: principals, durations, role
// targets, grants, bindings and the planner's changes. It is the leaf of the
// dependency graph and imports nothing of the project.
package model
