# unlimited-renewals: more renewals than renewal_cap, or a renewal chain
# longer than jit_duration_cap.
role "db-reader" {
  description = "Read production data"
}

jit "many-renewals" {
  roles        = ["db-reader"]
  requesters   = ["group:sre@example.com"]
  max_duration = "30m"
  max_renewals = 4 # WARNING: unlimited-renewals
}

jit "long-chain" {
  roles        = ["db-reader"]
  requesters   = ["group:sre@example.com"]
  max_duration = "3h"
  max_renewals = 2 # WARNING: unlimited-renewals
}
