# temporary-missing-approval: no approved_by, or no justification.
role "db-reader" {
  description = "Read production data"
}

temporary "unapproved" { # ERROR: temporary-missing-approval
  role          = "db-reader"
  principals    = ["user:a@partner.example"]
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-1"
}

temporary "nobody-approved" {
  role          = "db-reader"
  principals    = ["user:b@partner.example"]
  expires       = "2026-12-15T00:00:00Z"
  justification = "CHG-2"
  approved_by   = [] # ERROR: temporary-missing-approval
}

temporary "unexplained" { # ERROR: temporary-missing-approval
  role        = "db-reader"
  principals  = ["user:c@partner.example"]
  expires     = "2026-12-15T00:00:00Z"
  approved_by = ["user:cto@example.com"]
}

temporary "blank-reason" {
  role          = "db-reader"
  principals    = ["user:d@partner.example"]
  expires       = "2026-12-15T00:00:00Z"
  justification = "   " # ERROR: temporary-missing-approval
  approved_by   = ["user:cto@example.com"]
}
