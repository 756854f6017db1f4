# privileged-without-approval near miss: privileged roles behind a human
# approval or a duration-bounded auto_approve, and self-service for roles
# that are not admin-level.
role "break-things" {
  privileged = true
}

role "gcp-owner" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/iam.securityAdmin"
  }
}

role "viewer" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/logging.viewer"
  }
  aws {
    account   = "123456789012"
    role_name = "ReadOnlyAccess"
  }
  azure {
    scope           = "/subscriptions/00000000-0000-0000-0000-000000000000"
    role_definition = "Reader"
  }
}

jit "self-service-viewer" {
  roles        = ["viewer"]
  requesters   = ["group:everyone@example.com"]
  max_duration = "8h"
}

jit "approved" {
  roles        = ["break-things", "gcp-owner"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers = ["group:leads@example.com"]
  }
}

jit "short-auto" {
  roles        = ["break-things"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers    = ["group:leads@example.com"]
    auto_approve = request.duration <= 900 && contains(requester.groups, "group:oncall@example.com")
  }
}

jit "short-auto-index" {
  roles        = ["gcp-owner"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers    = ["group:leads@example.com"]
    auto_approve = request["duration"] < 600
  }
}
