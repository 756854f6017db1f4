# self-approval near miss: someone other than the requester can approve.
role "db-admin" {
  description = "Production databases"
}

jit "colleague" {
  roles        = ["db-admin"]
  requesters   = ["user:alice@example.com"]
  max_duration = "1h"
  approval {
    approvers = ["user:alice@example.com", "user:bob@example.com"]
  }
}

jit "peers" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers = ["group:sre@example.com"]
  }
}

jit "group-quorum" {
  roles        = ["db-admin"]
  requesters   = ["user:alice@example.com"]
  max_duration = "1h"
  approval {
    approvers     = ["group:leads@example.com", "user:alice@example.com"]
    min_approvals = 3
  }
}

jit "three-of-three" {
  roles        = ["db-admin"]
  requesters   = ["user:dave@example.com"]
  max_duration = "1h"
  approval {
    approvers     = ["user:a@example.com", "user:b@example.com", "user:c@example.com"]
    min_approvals = 3
  }
}

jit "self-service" {
  roles        = ["db-admin"]
  requesters   = ["user:alice@example.com"]
  max_duration = "1h"
}
