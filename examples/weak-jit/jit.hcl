# "Just in time", in name only.

# Weakness: a week-long grant is standing access with extra steps
# (jit-duration-too-long), renewable as often as anyone likes
# (unlimited-renewals), self-service for an admin role
# (privileged-without-approval), and nobody has to say why
# (justification-not-required).
jit "prod-admin-jit" {
  description   = "Production admin for the week: request on Monday, keep it until Friday"
  roles         = ["prod-admin"]
  requesters    = ["group:engineering@acme.example"]
  max_duration  = "7d"
  justification = false
  max_renewals  = 1000
}

# Weakness: the ops lead is the only approver of their own requests
# (self-approval).
jit "db-admin" {
  description  = "Database administration, approved by the ops lead"
  roles        = ["db-admin"]
  requesters   = ["user:ops-lead@acme.example"]
  max_duration = "4h"

  approval {
    approvers = ["user:ops-lead@acme.example"]
  }
}
