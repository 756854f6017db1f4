# HCL syntax: a block without its closing brace.
role "db-admin" {
  description = "Production databases"

jit "db" { # ERROR: syntax
  roles = ["db-admin"]
