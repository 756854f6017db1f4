# Access declared in git: reviewed in the pull request that adds it, granted
# at starts, removed at expires. Delete the block once the window has passed.

temporary "pg16-migration" {
  role          = "prod-db-migrator"
  principals    = ["user:dana@partner.example"]
  starts        = "2027-01-11T08:00:00Z"
  expires       = "2027-01-25T18:00:00Z"
  justification = "Postgres 16 upgrade of the orders database, CHG-2291"
  approved_by   = ["user:cto@acme.example"]
}
