# Required attributes left out.
role "db-admin" {
  gcp { # ERROR: schema
    resource = "projects/acme-prod"
  }
}

jit "db" { # ERROR: schema
  roles        = ["db-admin"]
  max_duration = "1h"
}

notifier "pager" { # ERROR: schema
  type = "webhook"
}
