# Break-glass: when Okta (our identity provider) is down, or a severity-1
# incident needs more than the normal path can give, someone signs in with
# one of these named emergency accounts. Their credentials are in the safe,
# each behind hardware MFA.
#
# elevate does not grant anything here: it watches the clouds' audit logs for
# these accounts, opens an incident on every use, pages security, and tracks
# the post-incident review until it is written.

break_glass "idp-outage" {
  description = "Identity provider down or severity-1 incident: sign in with a named emergency account"
  reasons     = ["identity-provider-outage", "incident-severity-critical"]

  # One named account per person-in-the-safe, per cloud. Never a group, never
  # a service account, never anyone who can also request roles.
  accounts = [
    "aws:arn:aws:iam::998877665544:user/breakglass-1",
    "gcp:user:breakglass-1@acme.example",
    "azure:user:breakglass1@acmecorp.onmicrosoft.com",
    "azure:user:breakglass2@acmecorp.onmicrosoft.com",
  ]
  roles = ["org-emergency-admin"]

  session_recording = true
  review_within     = "48h"
  max_uses          = 2
  use_window        = "90d"
  notify            = ["security-pager", "security-slack"]
}
