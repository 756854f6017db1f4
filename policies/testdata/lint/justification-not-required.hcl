# justification-not-required: privileged access without saying why.
role "gcp-editor" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/iam.securityAdmin"
  }
}

jit "quick-edit" {
  roles         = ["gcp-editor"]
  requesters    = ["group:sre@example.com"]
  max_duration  = "1h"
  justification = false # WARNING: justification-not-required
  approval {
    approvers = ["group:leads@example.com"]
  }
}
