# jit-duration-too-long near miss: settings raise the cap.
settings {
  jit_duration_cap = "2d"
}

role "db-reader" {
  description = "Read production data"
}

jit "db-read" {
  roles        = ["db-reader"]
  requesters   = ["group:sre@example.com"]
  max_duration = "48h"
}
