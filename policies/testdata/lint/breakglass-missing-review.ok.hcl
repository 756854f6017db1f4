# breakglass-missing-review near miss.
break_glass "idp-outage" {
  accounts          = ["user:bg-1@example.com"]
  session_recording = true
  review_within     = "72h"
  notify            = ["pager"]
}

notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}
