# Break-glass accounts the scanner fixtures are checked against.

notifier "security-pager" {
  type    = "webhook"
  url_env = "SECURITY_PAGER_URL"
}

break_glass "idp-outage" {
  description = "Identity provider down: sign in with a named emergency account"
  reasons     = ["identity-provider-outage"]
  accounts = [
    "aws:arn:aws:iam::123456789012:user/breakglass-alice",
    "gcp:user:breakglass-1@example.com",
    "azure:user:breakglass1@contoso.onmicrosoft.com",
  ]
  session_recording = true
  review_within     = "24h"
  notify            = ["security-pager"]
}

break_glass "last-resort" {
  description = "The root user, the emergency role, and the second Azure emergency account"
  reasons     = ["incident-severity-critical"]
  accounts = [
    "aws:arn:aws:iam::123456789012:root",
    "aws:arn:aws:iam::123456789012:role/BreakGlassAdmin",
    "azure:object:5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8e",
  ]
  session_recording = true
  review_within     = "24h"
  notify            = ["security-pager"]
}
