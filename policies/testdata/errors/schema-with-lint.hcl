# Validate lints whatever decoded next to the schema errors, so one typo
# does not hide the design problems elsewhere in the file.
role "db-admin" {
  privileged = true
}

jit "db" {
  roles          = ["db-admin", "db-reader"] # ERROR: unknown-reference; WARNING: privileged-without-approval
  requesters     = ["group:sre@example.com", "sre"] # ERROR: schema
  max_duration   = "7d" # WARNING: jit-duration-too-long
  ticket_pattern = "INC-[0-9+" # ERROR: schema
}

jit "ops" { # ERROR: jit-missing-max-duration
  roles            = ["db-admin"]
  requesters       = ["group:ops@example.com"]
  default_duration = "1 hour" # ERROR: schema
  approval {
    approvers = ["user:lead@example.com"]
  }
}
