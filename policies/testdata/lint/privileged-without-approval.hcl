# privileged-without-approval: admin-level roles that are self-service or
# auto-approved without looking at request.duration.
role "break-things" {
  privileged = true
}

role "gcp-owner" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/iam.securityAdmin"
  }
}

role "aws-admin" {
  aws {
    account   = "123456789012"
    role_name = "AdministratorAccess"
  }
}

role "azure-uaa" {
  azure {
    scope           = "/subscriptions/00000000-0000-0000-0000-000000000000"
    role_definition = "User Access Administrator"
  }
}

role "db-reader" {
  description = "Read production data"
}

jit "self-service" {
  roles        = ["db-reader", "break-things"] # WARNING: privileged-without-approval
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
}

jit "always-approved" {
  roles        = ["gcp-owner"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers    = ["group:leads@example.com"]
    auto_approve = true # WARNING: privileged-without-approval
  }
}

jit "on-call" {
  roles        = ["aws-admin", "azure-uaa"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers    = ["group:leads@example.com"]
    auto_approve = contains(requester.groups, "group:oncall@example.com") && request.ticket != "" # WARNING: privileged-without-approval
  }
}

jit "azure-self-service" {
  roles        = ["azure-uaa"] # WARNING: privileged-without-approval
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
}
