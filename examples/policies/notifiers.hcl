# Where alerts go. URLs and signing keys live in the daemon's environment,
# never in this repository.

notifier "security-pager" {
  type       = "webhook"
  url_env    = "ACME_SECURITY_PAGER_URL"
  secret_env = "ACME_SECURITY_PAGER_SECRET"
}

notifier "security-slack" {
  type    = "slack"
  url_env = "ACME_SECURITY_SLACK_WEBHOOK_URL"
}
