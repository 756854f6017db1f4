# null is not a way to leave out an attribute (it would hide a missing max_duration).
role "db-admin" {
}

jit "db" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = null # ERROR: schema
}
