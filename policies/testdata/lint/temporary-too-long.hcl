# temporary-too-long: a window over temporary_duration_cap (90d by default).
role "db-reader" {
  description = "Read production data"
}

temporary "half-year" {
  role          = "db-reader"
  principals    = ["user:a@partner.example"]
  starts        = "2026-01-01T00:00:00Z"
  expires       = "2026-07-01T00:00:00Z" # WARNING: temporary-too-long
  justification = "CHG-1"
  approved_by   = ["user:cto@example.com"]
}

temporary "one-second-over" {
  role          = "db-reader"
  principals    = ["user:b@partner.example"]
  starts        = "2026-01-01T00:00:00Z"
  expires       = "2026-04-01T00:00:01Z" # WARNING: temporary-too-long
  justification = "CHG-2"
  approved_by   = ["user:cto@example.com"]
}
