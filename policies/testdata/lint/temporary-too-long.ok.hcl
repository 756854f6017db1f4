# temporary-too-long near miss: exactly 90 days. Without starts the window
# begins when the policy is loaded; lint has no clock, so it cannot measure
# that window and stays silent.
role "db-reader" {
  description = "Read production data"
}

temporary "quarter" {
  role          = "db-reader"
  principals    = ["user:a@partner.example"]
  starts        = "2026-01-01T00:00:00Z"
  expires       = "2026-04-01T00:00:00Z"
  justification = "CHG-1"
  approved_by   = ["user:cto@example.com"]
}

temporary "from-load" {
  role          = "db-reader"
  principals    = ["user:b@partner.example"]
  expires       = "2027-12-31T00:00:00Z"
  justification = "CHG-2"
  approved_by   = ["user:cto@example.com"]
}
