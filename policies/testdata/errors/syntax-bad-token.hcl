# HCL syntax: two values for one argument.
role "db-admin" {
  description = "Production" "databases" # ERROR: syntax
}
