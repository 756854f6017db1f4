# temporary-missing-expiry near miss: one second is a window; without starts
# the window opens when the policy is loaded.
role "db-reader" {
  description = "Read production data"
}

temporary "short" {
  role          = "db-reader"
  principals    = ["user:a@partner.example"]
  starts        = "2026-12-01T00:00:00Z"
  expires       = "2026-12-01T00:00:01Z"
  justification = "CHG-1"
  approved_by   = ["user:cto@example.com"]
}

temporary "from-now" {
  role          = "db-reader"
  principals    = ["user:b@partner.example"]
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-2"
  approved_by   = ["user:cto@example.com"]
}
