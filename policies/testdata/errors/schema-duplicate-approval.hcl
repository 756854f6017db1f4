# A jit has at most one approval block.
role "db-admin" {
}

jit "db" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers = ["group:leads@example.com"]
  }
  approval { # ERROR: schema
    approvers = ["group:managers@example.com"]
  }
}
