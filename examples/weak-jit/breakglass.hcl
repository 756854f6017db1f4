# Weakness: the "break-glass" path is the same role the JIT path hands out
# (role-shared-jit-breakglass), the emergency accounts are a whole team and a
# robot (breakglass-account-shared), one of them requests and approves roles
# day to day (breakglass-account-requestable), nobody is alerted
# (breakglass-missing-alert), nothing is reviewed afterwards
# (breakglass-missing-review), and sessions are not recorded
# (breakglass-without-recording).
break_glass "outage" {
  description = "During outages, ops uses prod-admin directly"
  reasons     = ["identity-provider-outage", "incident-severity-critical"]
  accounts = [
    "group:ops@acme.example",
    "gcp:serviceAccount:ops-automation@acme-prod.iam.gserviceaccount.com",
    "user:ops-lead@acme.example",
  ]
  roles = ["prod-admin"]
}
