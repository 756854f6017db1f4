# Out-of-range and unknown settings, and a second settings block.
settings {
  renewal_cap             = -1 # ERROR: schema
  breakglass_max_accounts = 0 # ERROR: schema
  max_jit_duration        = "8h" # ERROR: schema
}

settings { # ERROR: schema
  jit_duration_cap = "4h"
}
