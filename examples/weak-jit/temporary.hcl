# Weakness: "temporary" access re-approved by reflex, quarter after quarter
# (temporary-renewal-chain), and the second window is longer than any
# temporary grant should be (temporary-too-long).

temporary "analyst-q1" {
  role          = "reporting-reader"
  principals    = ["user:sam@contractor.example"]
  starts        = "2027-01-01T00:00:00Z"
  expires       = "2027-03-31T00:00:00Z"
  justification = "Quarterly reporting, CHG-3001"
  approved_by   = ["user:head-of-data@acme.example"]
}

temporary "analyst-q2" {
  role          = "reporting-reader"
  principals    = ["user:sam@contractor.example"]
  starts        = "2027-03-31T00:00:00Z"
  expires       = "2027-07-31T00:00:00Z"
  justification = "Quarterly reporting, CHG-3188"
  approved_by   = ["user:head-of-data@acme.example"]
}
