# jit-missing-max-duration: a jit without a hard expiry.
role "db-reader" {
  description = "Read production data"
}

jit "db-read" { # ERROR: jit-missing-max-duration
  roles            = ["db-reader"]
  requesters       = ["group:sre@example.com"]
  default_duration = "30m"
}
