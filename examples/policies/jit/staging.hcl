# Staging holds no customer data: engineers serve themselves for up to three
# hours (six with the one renewal) and say why; the reason lands in the audit
# log. No approval block means self-service.

jit "staging-debug" {
  description      = "Deploy and debug in staging"
  roles            = ["staging-operator"]
  requesters       = ["group:engineering@acme.example"]
  max_duration     = "3h"
  default_duration = "1h"
  max_renewals     = 1
}
