# The classic weak design, kept as a warning. `elevate validate` reports
# every weakness; README.md lists them with the rule that catches each.
# Do not copy this set: copy examples/policies instead.

role "prod-admin" {
  description = "Owner of production in every cloud"
  privileged  = true

  gcp {
    resource = "projects/acme-prod"
    role     = "roles/owner"
  }

  aws {
    account   = "210987654321"
    role_name = "prod-admin"
  }

  azure {
    scope           = "/subscriptions/3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    role_definition = "Owner"
  }
}

role "db-admin" {
  description = "Administer the production databases"

  gcp {
    resource = "projects/acme-prod-data"
    role     = "roles/cloudsql.admin"
  }
}

role "reporting-reader" {
  description = "Read the reporting datasets"

  gcp {
    resource = "projects/acme-analytics"
    role     = "roles/bigquery.dataViewer"
  }
}
