# unlimited-renewals near miss: three renewals of 2h make exactly 8h, and
# a jit without renewals is jit-duration-too-long's business alone.
role "db-reader" {
  description = "Read production data"
}

jit "at-the-cap" {
  roles        = ["db-reader"]
  requesters   = ["group:sre@example.com"]
  max_duration = "2h"
  max_renewals = 3
}

jit "no-renewals" {
  roles        = ["db-reader"]
  requesters   = ["group:sre@example.com"]
  max_duration = "8h"
  max_renewals = 0
}
