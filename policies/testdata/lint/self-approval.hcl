# self-approval: approvals that only the requester could satisfy, or that
# nobody can. The requester never counts as an approver.
role "db-admin" {
  description = "Production databases"
}

jit "alone" {
  roles        = ["db-admin"]
  requesters   = ["user:alice@example.com"]
  max_duration = "1h"
  approval {
    approvers = ["user:alice@example.com"] # ERROR: self-approval
  }
}

jit "pair-needs-two" {
  roles        = ["db-admin"]
  requesters   = ["user:alice@example.com", "user:bob@example.com"]
  max_duration = "1h"
  approval {
    approvers = [
      "user:Alice@Example.com", # ERROR: self-approval
      "user:bob@example.com",
    ]
    min_approvals = 2
  }
}

jit "unsatisfiable" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers     = ["user:lead-1@example.com", "user:lead-2@example.com"]
    min_approvals = 3 # ERROR: self-approval
  }
}

jit "no-approvers" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers    = [] # ERROR: self-approval
    auto_approve = request.duration <= 900
  }
}
