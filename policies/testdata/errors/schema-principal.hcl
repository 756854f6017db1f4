# Principals without a kind, with an unknown kind, or with a malformed value.
role "db-admin" {
}

jit "db" {
  roles = ["db-admin"]
  requesters = [
    "alice@example.com", # ERROR: schema
    "user:alice", # ERROR: schema
    "team:sre", # ERROR: schema
    "aws:bob", # ERROR: schema
    "gcp:robot:x@example.com", # ERROR: schema
    "azure:object:not-a-guid", # ERROR: schema
    " user:bob@example.com", # ERROR: schema
    "group:sre team", # ERROR: schema
  ]
  max_duration = "1h"
}
