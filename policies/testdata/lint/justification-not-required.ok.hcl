# justification-not-required near miss: justification = false is fine for
# a role that is not admin-level, and true for one that is.
role "gcp-viewer" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/logging.viewer"
  }
}

role "gcp-editor" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/iam.securityAdmin"
  }
}

jit "look" {
  roles         = ["gcp-viewer"]
  requesters    = ["group:sre@example.com"]
  max_duration  = "1h"
  justification = false
}

jit "edit" {
  roles         = ["gcp-editor"]
  requesters    = ["group:sre@example.com"]
  max_duration  = "1h"
  justification = true
  approval {
    approvers = ["group:leads@example.com"]
  }
}
