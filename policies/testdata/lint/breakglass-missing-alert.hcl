# breakglass-missing-alert: no notifier, or an empty list of them.
break_glass "idp-outage" { # ERROR: breakglass-missing-alert
  accounts          = ["user:bg-1@example.com"]
  session_recording = true
  review_within     = "24h"
}

break_glass "cloud-lockout" {
  accounts          = ["user:bg-2@example.com"]
  session_recording = true
  review_within     = "24h"
  notify            = [] # ERROR: breakglass-missing-alert
}
