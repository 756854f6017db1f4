# breakglass-missing-alert near miss.
break_glass "idp-outage" {
  accounts          = ["user:bg-1@example.com"]
  session_recording = true
  review_within     = "24h"
  notify            = ["slack"]
}

notifier "slack" {
  type    = "slack"
  url_env = "SLACK_WEBHOOK_URL"
}
