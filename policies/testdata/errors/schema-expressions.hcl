# Policies are literal: no variables or interpolation outside auto_approve.
role "db-admin" {
  description = var.description # ERROR: schema
}

jit "db" {
  roles        = ["db-admin"]
  requesters   = ["group:sre@example.com"]
  max_duration = "${local.hours}h" # ERROR: schema
}
