# max_uses needs use_window; notifiers need a known type and environment variable names.
break_glass "outage" {
  accounts          = ["user:bg-1@example.com"]
  session_recording = true
  review_within     = "24h"
  max_uses          = 2 # ERROR: schema
  notify            = ["pager"]
}

notifier "pager" {
  type       = "email" # ERROR: schema
  url_env    = "https://hooks.example.com/pager" # ERROR: schema
  secret_env = "1SECRET" # ERROR: schema
}
