# The emergency path stays apart from the just-in-time path: break-glass
# accounts can never request anything, and the emergency role cannot be
# requested by anyone.

test "a break-glass account cannot request a role" {
  request {
    requester     = "gcp:user:breakglass-1@acme.example"
    role          = "prod-readonly"
    duration      = "30m"
    justification = "IdP is down, need to look around"
    ticket        = "INC-6000"
  }
  expect         = "denied"
  expect_reasons = ["breakglass-account"]
}

test "an Azure break-glass account cannot request a role either" {
  request {
    requester     = "azure:user:breakglass2@acmecorp.onmicrosoft.com"
    role          = "staging-operator"
    duration      = "1h"
    justification = "Testing"
  }
  expect         = "denied"
  expect_reasons = ["breakglass-account"]
}

test "not even on-call SRE can request the emergency role" {
  request {
    requester     = "user:alice@acme.example"
    groups        = ["group:sre@acme.example", "group:oncall@acme.example"]
    role          = "org-emergency-admin"
    duration      = "15m"
    justification = "Sev-1, need org admin"
    ticket        = "INC-6001"
  }
  expect         = "denied"
  expect_reasons = ["not-eligible"]
}

test "a role that does not exist is refused as such" {
  request {
    requester     = "user:alice@acme.example"
    groups        = ["group:sre@acme.example"]
    role          = "prod-admin"
    duration      = "15m"
    justification = "Typo in the role name"
    ticket        = "INC-6002"
  }
  expect         = "denied"
  expect_reasons = ["unknown-role"]
}
