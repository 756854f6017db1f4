# Near misses: a predefined role is fine for jit, and a basic role held
# standing by break-glass accounts is not granted with a condition.
role "project-reader" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/iam.securityReviewer"
  }
}

role "emergency-owner" {
  gcp {
    resource = "organizations/123456789012"
    role     = "roles/owner"
  }
}

jit "readers" {
  roles        = ["project-reader"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
  approval {
    approvers = ["group:sre-leads@example.com"]
  }
}

notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}

break_glass "outage" {
  accounts          = ["gcp:user:breakglass-1@example.com"]
  roles             = ["emergency-owner"]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}
