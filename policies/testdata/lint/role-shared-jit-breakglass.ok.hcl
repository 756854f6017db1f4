# role-shared-jit-breakglass near miss: break-glass roles with their own
# cloud bindings, even where they share a scope or a cloud role name.
role "db-admin" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/cloudsql.admin"
  }
  aws {
    account   = "123456789012"
    role_name = "db-admin"
  }
}

role "emergency-db" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/cloudsql.editor"
  }
  gcp {
    resource = "projects/acme-staging"
    role     = "roles/cloudsql.admin"
  }
  aws {
    account   = "210987654321"
    role_name = "db-admin"
  }
}

jit "db" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
}

break_glass "outage" {
  accounts          = ["user:bg-1@example.com"]
  roles             = ["emergency-db"]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}

notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}
