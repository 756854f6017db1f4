# breakglass-too-many-accounts: more accounts in one block than the cap.
settings {
  breakglass_max_accounts = 2
}

break_glass "idp-outage" {
  accounts = [ # ERROR: breakglass-too-many-accounts
    "user:bg-1@example.com",
    "user:bg-2@example.com",
    "user:bg-3@example.com",
  ]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}

notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}
