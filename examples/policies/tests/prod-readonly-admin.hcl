# Policy unit tests for jit "prod-readonly-admin". Run them with
#   elevate test examples/policies

test "on-call SRE with an incident ticket gets 30 minutes without waiting" {
  request {
    requester     = "user:alice@acme.example"
    groups        = ["group:sre@acme.example", "group:oncall@acme.example"]
    role          = "prod-readonly"
    duration      = "30m"
    justification = "Checkout error rate up, looking at load balancer logs"
    ticket        = "INC-4711"
  }
  expect        = "allowed"
  expect_policy = "prod-readonly-admin"
}

test "backend engineer with a change ticket waits for a manager" {
  request {
    requester     = "user:bob@acme.example"
    groups        = ["group:backend@acme.example", "group:engineering@acme.example"]
    role          = "prod-readonly"
    duration      = "45m"
    justification = "Verify the config of the new payments queue before rollout"
    ticket        = "CHG-812"
  }
  expect        = "needs_approval"
  expect_policy = "prod-readonly-admin"
}

test "on call but asking for the full hour waits for a manager" {
  request {
    requester     = "user:alice@acme.example"
    groups        = ["group:sre@acme.example", "group:oncall@acme.example"]
    role          = "prod-readonly"
    duration      = "60m"
    justification = "Long-running investigation of the nightly batch"
    ticket        = "INC-4712"
  }
  expect = "needs_approval"
}

test "an incident ticket without being on call waits for a manager" {
  request {
    requester     = "user:bob@acme.example"
    groups        = ["group:backend@acme.example", "group:engineering@acme.example"]
    role          = "prod-readonly"
    duration      = "15m"
    justification = "Helping with the checkout incident"
    ticket        = "INC-4711"
  }
  expect = "needs_approval"
}

test "a renewal always waits for a manager" {
  request {
    requester     = "user:alice@acme.example"
    groups        = ["group:sre@acme.example", "group:oncall@acme.example"]
    role          = "prod-readonly"
    duration      = "15m"
    justification = "Still tracing the checkout errors"
    ticket        = "INC-4711"
    renewal       = true
    renewals      = 0
  }
  expect = "needs_approval"
}

test "a second renewal is refused" {
  request {
    requester     = "user:alice@acme.example"
    groups        = ["group:sre@acme.example", "group:oncall@acme.example"]
    role          = "prod-readonly"
    duration      = "15m"
    justification = "Still tracing the checkout errors"
    ticket        = "INC-4711"
    renewal       = true
    renewals      = 1
  }
  expect         = "denied"
  expect_reasons = ["renewals-exhausted"]
}

test "more than an hour is refused" {
  request {
    requester     = "user:alice@acme.example"
    groups        = ["group:sre@acme.example", "group:oncall@acme.example"]
    role          = "prod-readonly"
    duration      = "2h"
    justification = "Quarterly access review"
    ticket        = "CHG-900"
  }
  expect         = "denied"
  expect_reasons = ["duration-exceeds-max"]
}

test "no reason means no access" {
  request {
    requester = "user:alice@acme.example"
    groups    = ["group:sre@acme.example", "group:oncall@acme.example"]
    role      = "prod-readonly"
    duration  = "15m"
    ticket    = "INC-4711"
  }
  expect         = "denied"
  expect_reasons = ["justification-missing"]
}

test "a ticket from another tracker is refused" {
  request {
    requester     = "user:bob@acme.example"
    groups        = ["group:backend@acme.example"]
    role          = "prod-readonly"
    duration      = "30m"
    justification = "Look at the payments dashboards"
    ticket        = "JIRA-77"
  }
  expect         = "denied"
  expect_reasons = ["ticket-invalid"]
}

test "marketing is not eligible" {
  request {
    requester     = "user:erin@acme.example"
    groups        = ["group:marketing@acme.example"]
    role          = "prod-readonly"
    duration      = "30m"
    justification = "Campaign numbers"
    ticket        = "CHG-1"
  }
  expect         = "denied"
  expect_reasons = ["not-eligible"]
}
