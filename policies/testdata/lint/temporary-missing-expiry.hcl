# temporary-missing-expiry: no expires, or expires not after starts.
role "db-reader" {
  description = "Read production data"
}

temporary "forever" { # ERROR: temporary-missing-expiry
  role          = "db-reader"
  principals    = ["user:a@partner.example"]
  starts        = "2026-12-01T00:00:00Z"
  justification = "CHG-1"
  approved_by   = ["user:cto@example.com"]
}

temporary "instant" {
  role          = "db-reader"
  principals    = ["user:b@partner.example"]
  starts        = "2026-12-01T00:00:00Z"
  expires       = "2026-12-01T00:00:00Z" # ERROR: temporary-missing-expiry
  justification = "CHG-2"
  approved_by   = ["user:cto@example.com"]
}

temporary "backwards" {
  role          = "db-reader"
  principals    = ["user:c@partner.example"]
  starts        = "2026-12-15T00:00:00Z"
  expires       = "2026-12-01T00:00:00Z" # ERROR: temporary-missing-expiry
  justification = "CHG-3"
  approved_by   = ["user:cto@example.com"]
}
