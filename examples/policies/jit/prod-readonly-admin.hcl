# Read-only administrative access to production, just in time.
#
# At most an hour (one renewal, re-evaluated like a new request), a reason and
# a ticket every time. Approval comes from an engineering manager, or from the
# incident system: an on-call engineer working an incident ticket (INC-…) gets
# up to 30 minutes without waiting.

jit "prod-readonly-admin" {
  description      = "Investigate production with read-only admin access"
  roles            = ["prod-readonly"]
  requesters       = ["group:sre@acme.example", "group:backend@acme.example", "group:security@acme.example"]
  max_duration     = "60m"
  default_duration = "30m"
  justification    = true
  ticket_pattern   = "^(INC|CHG)-[0-9]+$"
  max_renewals     = 1

  approval {
    approvers     = ["group:eng-managers@acme.example"]
    min_approvals = 1
    auto_approve = (
      request.duration <= 1800
      && !request.renewal
      && can(regex("^INC-[0-9]+$", request.ticket))
      && contains(requester.groups, "group:oncall@acme.example")
    )
  }
}
