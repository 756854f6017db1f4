# test blocks need exactly one request and a valid expect.
role "db-admin" {
}

test "no request" { # ERROR: schema
  expect = "allowed"
}

test "two requests" {
  request {
    requester = "user:alice@example.com"
    role      = "db-admin"
  }
  request { # ERROR: schema
    requester = "user:bob@example.com"
    role      = "db-admin"
  }
  expect = "denied"
}

test "bad expectation" {
  request {
    requester = "user:alice@example.com"
    role      = "db-admin"
    duration  = "forever" # ERROR: schema
  }
  expect = "maybe" # ERROR: schema
}

test "no expectation" { # ERROR: schema
  request {
    requester = "alice" # ERROR: schema
    role      = "db-admin"
  }
}
