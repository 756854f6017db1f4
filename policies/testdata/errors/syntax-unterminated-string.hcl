# HCL syntax: a string without its closing quote.
role "db-admin" {
  description = "Production databases # ERROR: syntax
} # ERROR: syntax
