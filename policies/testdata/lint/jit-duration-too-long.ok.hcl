# jit-duration-too-long near miss: exactly the default cap of 8h.
role "db-reader" {
  description = "Read production data"
}

jit "db-read" {
  roles        = ["db-reader"]
  requesters   = ["group:sre@example.com"]
  max_duration = "8h"
}
