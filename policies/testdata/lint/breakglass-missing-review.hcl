# breakglass-missing-review: no post-incident review deadline.
break_glass "idp-outage" { # ERROR: breakglass-missing-review
  accounts          = ["user:bg-1@example.com"]
  session_recording = true
  notify            = ["pager"]
}

notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}
