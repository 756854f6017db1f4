# Times that are not RFC 3339 in UTC.
role "db-admin" {
}

temporary "a" {
  role          = "db-admin"
  principals    = ["user:a@partner.example"]
  starts        = "2026-12-01" # ERROR: schema
  expires       = "2026-12-15T00:00:00+02:00" # ERROR: schema
  justification = "CHG-1"
  approved_by   = ["user:cto@example.com"]
}

temporary "b" {
  role          = "db-admin"
  principals    = ["user:b@partner.example"]
  expires       = "next tuesday" # ERROR: schema
  justification = "CHG-2"
  approved_by   = ["user:cto@example.com"]
}
