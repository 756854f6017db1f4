# temporary-missing-approval near miss: an approver and a reason.
role "db-reader" {
  description = "Read production data"
}

temporary "approved" {
  role          = "db-reader"
  principals    = ["user:a@partner.example"]
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-1"
  approved_by   = ["group:change-board@example.com"]
}
