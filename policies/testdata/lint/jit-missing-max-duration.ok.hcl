# jit-missing-max-duration near miss: max_duration is set.
role "db-reader" {
  description = "Read production data"
}

jit "db-read" {
  roles            = ["db-reader"]
  requesters       = ["group:sre@example.com"]
  default_duration = "30m"
  max_duration     = "1h"
}
