# Production database troubleshooting, just in time.
#
# Same shape as prod-readonly-admin but for a role that can change data, so the
# system path is narrower: on call, an incident ticket, 15 minutes at most.
# Anything longer, any renewal and any change ticket waits for a manager.

jit "db-troubleshooting" {
  description      = "On-call database troubleshooting"
  roles            = ["prod-db-admin"]
  requesters       = ["group:sre@acme.example", "group:dba@acme.example"]
  max_duration     = "60m"
  default_duration = "15m"
  justification    = true
  ticket_pattern   = "^(INC|CHG)-[0-9]+$"
  max_renewals     = 1

  approval {
    approvers     = ["group:eng-managers@acme.example", "group:dba-leads@acme.example"]
    min_approvals = 1
    auto_approve = (
      request.duration <= 900
      && !request.renewal
      && can(regex("^INC-[0-9]+$", request.ticket))
      && contains(requester.groups, "group:oncall@acme.example")
    )
  }
}
