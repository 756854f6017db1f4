# breakglass-too-many-accounts near miss: the cap applies per break_glass
# block, and a block at the cap is fine.
settings {
  breakglass_max_accounts = 2
}

break_glass "idp-outage" {
  accounts          = ["user:bg-1@example.com", "user:bg-2@example.com"]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}

break_glass "cloud-lockout" {
  accounts          = ["user:bg-3@example.com", "user:bg-4@example.com"]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}

notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}
