# Block names: invalid, extra or missing labels, and empty names in a list.
role "-db-admin" { # ERROR: schema
}

role "db" "admin" { # ERROR: schema
}

role { # ERROR: schema
}

jit "db" {
  roles        = ["", "-db-admin"] # ERROR: schema
  requesters   = ["group:sre@example.com"]
  max_duration = "1h"
}
