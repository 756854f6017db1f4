# auto_approve may use only request and requester, and must be a condition.
role "db-admin" {
}

jit "unknown-variable" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers    = ["group:leads@example.com"]
    auto_approve = now.hour < 18 && request.duration <= 900 # ERROR: schema
  }
}

jit "not-a-condition" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers    = ["group:leads@example.com"]
    auto_approve = request.duration # ERROR: schema
  }
}

jit "unknown-attribute" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers    = ["group:leads@example.com"]
    auto_approve = request.owner == "alice" # ERROR: schema
  }
}

jit "unknown-function" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers    = ["group:leads@example.com"]
    auto_approve = timestamp() != "" # ERROR: schema
  }
}

jit "null-condition" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers    = ["group:leads@example.com"]
    auto_approve = null # ERROR: schema
  }
}

jit "fine" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers    = ["group:leads@example.com"]
    auto_approve = can(regex("^INC-", request.ticket)) && request.duration <= 900 && !request.renewal
  }
}
