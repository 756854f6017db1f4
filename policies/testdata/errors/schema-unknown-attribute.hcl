# Misspelt or invented attributes.
role "db-admin" {
  owner = "dba" # ERROR: schema
}

jit "db" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  max_duraton  = "2h" # ERROR: schema
  approval {
    approvers = ["group:leads@example.com"]
    quorum    = 2 # ERROR: schema
  }
}
