# GCP refuses IAM Conditions on basic roles, so jit or temporary access to
# one can never be granted.
role "project-owner" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/owner" # ERROR: gcp-basic-role-conditional
  }
}

role "project-editor" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/editor" # ERROR: gcp-basic-role-conditional
  }
}

jit "owners" {
  roles        = ["project-owner"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers = ["group:sre-leads@example.com"]
  }
}

temporary "migration" {
  role          = "project-editor"
  principals    = ["user:contractor@partner.example"]
  starts        = "2026-12-01T00:00:00Z"
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-1234"
  approved_by   = ["user:cto@example.com"]
}
