# unlimited-renewals with settings: renewal_cap = 0 forbids renewals.
settings {
  renewal_cap = 0
}

role "db-reader" {
  description = "Read production data"
}

jit "one-renewal" {
  roles        = ["db-reader"]
  requesters   = ["group:sre@example.com"]
  max_duration = "30m"
  max_renewals = 1 # WARNING: unlimited-renewals
}
