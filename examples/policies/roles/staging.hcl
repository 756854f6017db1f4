# Staging: no customer data, so engineers serve themselves.

role "staging-operator" {
  description = "Deploy to and debug the staging environment"

  gcp {
    resource = "projects/acme-staging"
    role     = "roles/container.developer"
  }

  aws {
    account        = "345678901234"
    instance_arn   = "arn:aws:sso:::instance/ssoins-7223a1b2c3d4e5f6"
    permission_set = "arn:aws:sso:::permissionSet/ssoins-7223a1b2c3d4e5f6/ps-5d6e7f8091a2b3c4"
  }

  # Azure: a plain role assignment (no PIM licence on the staging tenant);
  # elevate deletes it at expiry.
  azure {
    scope           = "/subscriptions/6ba7b810-9dad-41d1-80b4-00c04fd430c8/resourceGroups/rg-staging"
    role_definition = "Contributor"
    pim             = false
  }
}
