# Values of the wrong type.
role "db-admin" {
  privileged = "yes please" # ERROR: schema
}

jit "db" {
  roles         = "db-admin" # ERROR: schema
  requesters    = ["group:sre@example.com", 42] # ERROR: schema
  max_duration  = 3600 # ERROR: schema
  max_renewals  = 1.5 # ERROR: schema
  justification = "no" # ERROR: schema
}
