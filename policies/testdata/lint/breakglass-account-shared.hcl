# breakglass-account-shared: accounts that are not one person's, or that
# two break_glass blocks share.
break_glass "idp-outage" {
  accounts = [
    "group:admins@example.com",                           # ERROR: breakglass-account-shared
    "gcp:domain:example.com",                             # ERROR: breakglass-account-shared
    "user:*@example.com",                                 # ERROR: breakglass-account-shared
    "serviceAccount:robot@acme.iam.gserviceaccount.com",  # ERROR: breakglass-account-shared
    "gcp:serviceAccount:ci@acme.iam.gserviceaccount.com", # ERROR: breakglass-account-shared
  ]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}

break_glass "cloud-lockout" {
  accounts          = ["user:bg-alice@example.com"]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}

break_glass "network-outage" {
  accounts = [
    "user:BG-Alice@Example.com", # ERROR: breakglass-account-shared
    "aws:arn:aws:iam::123456789012:group/admins", # ERROR: breakglass-account-shared
  ]
  session_recording = true
  review_within     = "24h"
  notify            = ["pager"]
}

notifier "pager" {
  type    = "webhook"
  url_env = "PAGER_URL"
}
