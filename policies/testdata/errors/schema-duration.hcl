# Durations elevate cannot read: spaces, no unit, fractions, signs, zero, weeks.
role "db-admin" {
}

jit "a" {
  roles            = ["db-admin"]
  requesters       = ["group:sre@example.com"]
  max_duration     = "1 hour" # ERROR: schema
  default_duration = "90" # ERROR: schema
}

jit "b" {
  roles            = ["db-admin"]
  requesters       = ["group:sre@example.com"]
  max_duration     = "1.5h" # ERROR: schema
  default_duration = "-10m" # ERROR: schema
}

jit "c" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "0s" # ERROR: schema
}

settings {
  jit_duration_cap = "1w" # ERROR: schema
}
