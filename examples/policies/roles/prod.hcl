# Production roles. Nobody holds these standing: they are granted just in
# time (jit/) or, for a fixed migration window, declared in temporary/.

role "prod-readonly" {
  description = "Read everything in production, change nothing: dashboards, logs, IAM and config"
  privileged  = true

  # GCP: the whole production folder.
  # Predefined read-only roles: GCP refuses time conditions on the basic
  # roles/viewer (rule gcp-basic-role-conditional).
  gcp {
    resource = "folders/301234567890"
    role     = "roles/monitoring.viewer"
  }
  gcp {
    resource = "folders/301234567890"
    role     = "roles/logging.viewer"
  }
  gcp {
    resource = "folders/301234567890"
    role     = "roles/iam.securityReviewer"
  }

  # AWS: the ReadOnlyAccess permission set, assigned through Identity Center.
  aws {
    account        = "210987654321"
    instance_arn   = "arn:aws:sso:::instance/ssoins-7223a1b2c3d4e5f6"
    permission_set = "arn:aws:sso:::permissionSet/ssoins-7223a1b2c3d4e5f6/ps-0a1b2c3d4e5f6a7b"
  }

  # Azure: Reader on the production subscription, as a PIM schedule.
  azure {
    scope           = "/subscriptions/3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    role_definition = "Reader"
  }
}

role "prod-db-admin" {
  description = "Administer the production databases: kill queries, fail over, change flags"
  privileged  = true
  standing    = "remove" # a standing assignment of this role is removed, not just reported

  gcp {
    resource = "projects/acme-prod-data"
    role     = "roles/cloudsql.admin"
  }

  # AWS: a time-conditioned trust statement on an IAM role (assume-role mode).
  aws {
    account   = "210987654321"
    role_name = "prod-db-admin"
  }

  azure {
    scope           = "/subscriptions/3f2504e0-4f89-41d3-9a0c-0305e82c3301/resourceGroups/rg-prod-sql"
    role_definition = "SQL Server Contributor"
    pim             = true
  }
}

role "prod-db-migrator" {
  description = "Run schema and engine migrations on the orders database"

  gcp {
    resource = "projects/acme-prod-data"
    role     = "roles/cloudsql.editor"
  }
}
