# breakglass-without-recording: session_recording off or not set.
break_glass "idp-outage" {
  accounts          = ["user:bg-1@example.com"]
  session_recording = false # WARNING: breakglass-without-recording
  review_within     = "24h"
  notify            = ["pager"]
}

break_glass "cloud-lockout" { # WARNING: breakglass-without-recording
  accounts      = ["user:bg-2@example.com"]
  review_within = "24h"
  notify        = ["pager"]
}

notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}
