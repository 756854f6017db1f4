# temporary-renewal-chain near miss: a gap between windows, another role, or
# another principal.
role "db-reader" {
  description = "Read production data"
}

role "db-writer" {
  description = "Write production data"
}

temporary "migration" {
  role          = "db-reader"
  principals    = ["user:a@partner.example"]
  starts        = "2026-12-01T00:00:00Z"
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-1"
  approved_by   = ["user:cto@example.com"]
}

temporary "follow-up" {
  role          = "db-reader"
  principals    = ["user:a@partner.example"]
  starts        = "2026-12-15T00:00:01Z"
  expires       = "2026-12-29T00:00:00Z"
  justification = "CHG-2"
  approved_by   = ["user:cto@example.com"]
}

temporary "writer" {
  role          = "db-writer"
  principals    = ["user:a@partner.example"]
  starts        = "2026-12-01T00:00:00Z"
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-3"
  approved_by   = ["user:cto@example.com"]
}

temporary "colleague" {
  role          = "db-reader"
  principals    = ["user:b@partner.example"]
  starts        = "2026-12-01T00:00:00Z"
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-4"
  approved_by   = ["user:cto@example.com"]
}

temporary "from-load" {
  role          = "db-reader"
  principals    = ["user:c@partner.example"]
  expires       = "2026-11-01T00:00:00Z"
  justification = "CHG-5"
  approved_by   = ["user:cto@example.com"]
}

temporary "later" {
  role          = "db-reader"
  principals    = ["user:c@partner.example"]
  starts        = "2026-11-02T00:00:00Z"
  expires       = "2026-11-09T00:00:00Z"
  justification = "CHG-6"
  approved_by   = ["user:cto@example.com"]
}
