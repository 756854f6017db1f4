# role-shared-jit-breakglass: emergency access reachable through everyday
# access, by role name or through an identical cloud target.
role "db-admin" {
  gcp {
    resource = "projects/acme-prod"
    role     = "roles/cloudsql.admin"
  }
}

role "net-admin" {
  aws {
    account   = "123456789012"
    role_name = "network-admin"
  }
}

role "sub-owner" {
  azure {
    scope           = "/subscriptions/00000000-0000-0000-0000-000000000000"
    role_definition = "Contributor"
  }
}

role "emergency-contributor" {
  description = "Same Azure binding as sub-owner, granted without PIM"
  azure {
    scope           = "/subscriptions/00000000-0000-0000-0000-000000000000"
    role_definition = "Contributor"
    pim             = false
  }
}

jit "db" {
  roles        = ["db-admin", "sub-owner"]
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
}

temporary "network-migration" {
  role          = "net-admin"
  principals    = ["user:contractor@partner.example"]
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-1234"
  approved_by   = ["user:cto@example.com"]
}

break_glass "outage" {
  accounts = ["user:bg-1@example.com"]
  roles = [
    "db-admin",              # ERROR: role-shared-jit-breakglass
    "net-admin",             # ERROR: role-shared-jit-breakglass
    "emergency-contributor", # ERROR: role-shared-jit-breakglass
  ]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}

notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}
