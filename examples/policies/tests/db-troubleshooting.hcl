# Policy unit tests for jit "db-troubleshooting".

test "on-call DBA with an incident ticket gets 15 minutes without waiting" {
  request {
    requester     = "user:carol@acme.example"
    groups        = ["group:dba@acme.example", "group:oncall@acme.example"]
    role          = "prod-db-admin"
    duration      = "15m"
    justification = "Replica lag on orders-db, killing the runaway query"
    ticket        = "INC-5120"
  }
  expect        = "allowed"
  expect_policy = "db-troubleshooting"
}

test "the default of 15 minutes is auto-approved too" {
  request {
    requester     = "user:alice@acme.example"
    groups        = ["group:sre@acme.example", "group:oncall@acme.example"]
    role          = "prod-db-admin"
    justification = "Connection pool exhausted on orders-db"
    ticket        = "INC-5121"
  }
  expect        = "allowed"
  expect_policy = "db-troubleshooting"
}

test "twenty minutes on call waits for a manager" {
  request {
    requester     = "user:carol@acme.example"
    groups        = ["group:dba@acme.example", "group:oncall@acme.example"]
    role          = "prod-db-admin"
    duration      = "20m"
    justification = "Failover drill follow-up"
    ticket        = "INC-5120"
  }
  expect        = "needs_approval"
  expect_policy = "db-troubleshooting"
}

test "a planned change waits for a manager" {
  request {
    requester     = "user:carol@acme.example"
    groups        = ["group:dba@acme.example"]
    role          = "prod-db-admin"
    duration      = "60m"
    justification = "Raise max_connections on orders-db"
    ticket        = "CHG-2290"
  }
  expect = "needs_approval"
}

test "backend engineers cannot administer the databases" {
  request {
    requester     = "user:bob@acme.example"
    groups        = ["group:backend@acme.example", "group:engineering@acme.example", "group:oncall@acme.example"]
    role          = "prod-db-admin"
    duration      = "15m"
    justification = "My service cannot connect"
    ticket        = "INC-5120"
  }
  expect         = "denied"
  expect_reasons = ["not-eligible"]
}

test "ninety minutes is more than the hour allowed" {
  request {
    requester     = "user:carol@acme.example"
    groups        = ["group:dba@acme.example"]
    role          = "prod-db-admin"
    duration      = "1h30m"
    justification = "Vacuum the orders table"
    ticket        = "CHG-2290"
  }
  expect         = "denied"
  expect_reasons = ["duration-exceeds-max"]
}

test "the migration contractor cannot request database access just in time" {
  request {
    requester     = "user:dana@partner.example"
    role          = "prod-db-admin"
    duration      = "15m"
    justification = "Check the migration progress"
    ticket        = "CHG-2291"
  }
  expect         = "denied"
  expect_reasons = ["not-eligible"]
}
