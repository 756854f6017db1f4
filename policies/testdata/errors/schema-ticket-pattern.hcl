# ticket_pattern must compile as a Go (RE2) regular expression.
role "db-admin" {
}

jit "db" {
  roles          = ["db-admin"]
  requesters     = ["group:sre@example.com"]
  max_duration   = "1h"
  ticket_pattern = "^(INC|CHG-[0-9]+$" # ERROR: schema
}

jit "db-2" {
  roles          = ["db-admin"]
  requesters     = ["group:sre@example.com"]
  max_duration   = "1h"
  ticket_pattern = "(?<=INC)-[0-9]+" # ERROR: schema
}
