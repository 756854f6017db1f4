# Policy unit tests for jit "staging-debug".

test "engineers serve themselves in staging" {
  request {
    requester     = "user:bob@acme.example"
    groups        = ["group:backend@acme.example", "group:engineering@acme.example"]
    role          = "staging-operator"
    duration      = "2h"
    justification = "Debug the new payments queue consumer"
  }
  expect        = "allowed"
  expect_policy = "staging-debug"
}

test "staging needs no ticket but still a reason" {
  request {
    requester = "user:bob@acme.example"
    groups    = ["group:engineering@acme.example"]
    role      = "staging-operator"
  }
  expect         = "denied"
  expect_reasons = ["justification-missing"]
}

test "a renewal in staging is self-service too" {
  request {
    requester     = "user:bob@acme.example"
    groups        = ["group:engineering@acme.example"]
    role          = "staging-operator"
    duration      = "1h"
    justification = "Load test still running"
    renewal       = true
    renewals      = 0
  }
  expect = "allowed"
}
