# Acme's lint thresholds. Tighter than the defaults: a "just-in-time" grant
# at Acme never adds up to more than a working day, renewals included, and
# the emergency procedure has exactly four named accounts.
settings {
  jit_duration_cap        = "8h"
  temporary_duration_cap  = "30d"
  renewal_cap             = 2
  breakglass_max_accounts = 4
}
