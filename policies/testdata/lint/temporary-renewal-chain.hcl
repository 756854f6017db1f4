# temporary-renewal-chain: blocks for one principal and role whose windows
# touch or overlap.
role "db-reader" {
  description = "Read production data"
}

role "db-writer" {
  description = "Write production data"
}

temporary "migration" {
  role          = "db-reader"
  principals    = ["user:a@partner.example", "user:b@partner.example"]
  starts        = "2026-12-01T00:00:00Z"
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-1"
  approved_by   = ["user:cto@example.com"]
}

temporary "migration-2" {
  role          = "db-reader"
  principals    = ["user:A@Partner.example"]
  starts        = "2026-12-15T00:00:00Z" # WARNING: temporary-renewal-chain
  expires       = "2026-12-29T00:00:00Z"
  justification = "CHG-2"
  approved_by   = ["user:cto@example.com"]
}

temporary "overlap" {
  role          = "db-reader"
  principals    = ["user:b@partner.example"]
  starts        = "2026-12-10T00:00:00Z" # WARNING: temporary-renewal-chain
  expires       = "2026-12-20T00:00:00Z"
  justification = "CHG-3"
  approved_by   = ["user:cto@example.com"]
}

temporary "writer-now" {
  role          = "db-writer"
  principals    = ["user:c@partner.example"]
  expires       = "2027-02-01T00:00:00Z"
  justification = "CHG-4"
  approved_by   = ["user:cto@example.com"]
}

temporary "writer-next" {
  role          = "db-writer"
  principals    = ["user:c@partner.example"]
  starts        = "2027-02-01T00:00:00Z" # WARNING: temporary-renewal-chain
  expires       = "2027-03-01T00:00:00Z"
  justification = "CHG-5"
  approved_by   = ["user:cto@example.com"]
}

temporary "writer-again" { # WARNING: temporary-renewal-chain
  role          = "db-writer"
  principals    = ["user:c@partner.example"]
  expires       = "2027-01-15T00:00:00Z"
  justification = "CHG-6"
  approved_by   = ["user:cto@example.com"]
}
