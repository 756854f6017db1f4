# default-exceeds-max: the default would be refused by its own policy.
role "db-reader" {
  description = "Read production data"
}

jit "db-read" {
  roles            = ["db-reader"]
  requesters       = ["group:sre@example.com"]
  max_duration     = "1h"
  default_duration = "1h1m" # ERROR: default-exceeds-max
}
