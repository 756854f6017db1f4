# default-exceeds-max near miss: a default equal to the maximum is fine.
role "db-reader" {
  description = "Read production data"
}

jit "db-read" {
  roles            = ["db-reader"]
  requesters       = ["group:sre@example.com"]
  max_duration     = "1h"
  default_duration = "60m"
}
