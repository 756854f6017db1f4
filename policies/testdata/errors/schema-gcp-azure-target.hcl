# Malformed GCP and Azure targets, and an unknown standing mode.
role "gcp" {
  gcp {
    resource = "acme-prod" # ERROR: schema
    role     = "owner" # ERROR: schema
  }
}

role "azure" {
  azure {
    scope           = "subscriptions/00000000-0000-0000-0000-000000000000" # ERROR: schema
    role_definition = "  " # ERROR: schema
    pim             = "yes" # ERROR: schema
  }
  standing = "delete" # ERROR: schema
}
