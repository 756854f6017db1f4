# breakglass-account-shared near miss: individual accounts, each in one
# break_glass block, in every principal syntax.
break_glass "idp-outage" {
  accounts = [
    "user:bg-alice@example.com",
    "aws:arn:aws:iam::123456789012:user/breakglass-alice",
    "gcp:user:breakglass-1@example.com",
    "azure:user:breakglass1@contoso.onmicrosoft.com",
  ]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}

break_glass "cloud-lockout" {
  accounts = [
    "user:bg-bob@example.com",
    "aws:arn:aws:iam::123456789012:user/breakglass-bob",
    "azure:object:00000000-0000-0000-0000-000000000001",
  ]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}

notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}
