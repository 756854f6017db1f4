# What the weak design lets through. These tests pass, which is the problem.

test "any engineer gets production owner for a week without a reason" {
  request {
    requester = "user:bob@acme.example"
    groups    = ["group:engineering@acme.example"]
    role      = "prod-admin"
    duration  = "7d"
  }
  expect        = "allowed"
  expect_policy = "prod-admin-jit"
}

test "the fiftieth renewal is still self-service" {
  request {
    requester = "user:bob@acme.example"
    groups    = ["group:engineering@acme.example"]
    role      = "prod-admin"
    duration  = "7d"
    renewal   = true
    renewals  = 49
  }
  expect = "allowed"
}
