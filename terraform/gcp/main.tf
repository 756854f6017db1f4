# elevate's own identity and audit-log plumbing on Google Cloud: a service
# account, an organization custom role with exactly the permissions the GCP
# provider and audit source use, and an aggregated sink that routes every
# Cloud Audit Log entry of the organization into one log bucket that elevate
# reads with one entries.list call per poll.

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0"
    }
  }
}

locals {
  # Exactly what elevate calls: Get/SetIamPolicy on projects, folders and
  # the organization, and entries.list on audit logs (Data Access entries,
  # sign-ins among them, need the private permission).
  permissions = [
    "resourcemanager.projects.getIamPolicy",
    "resourcemanager.projects.setIamPolicy",
    "resourcemanager.folders.getIamPolicy",
    "resourcemanager.folders.setIamPolicy",
    "resourcemanager.organizations.getIamPolicy",
    "resourcemanager.organizations.setIamPolicy",
    "logging.logEntries.list",
    "logging.privateLogEntries.list",
  ]
  bucket_name = "projects/${var.project_id}/locations/${var.log_bucket_location}/buckets/${var.log_bucket_id}"
  audit_view  = "${local.bucket_name}/views/_AllLogs"
}

resource "google_service_account" "elevate" {
  project      = var.project_id
  account_id   = var.service_account_id
  display_name = "elevate"
  description  = "Grants and removes just-in-time role bindings; reads audit logs."
}

resource "google_organization_iam_custom_role" "elevate" {
  org_id      = var.org_id
  role_id     = var.custom_role_id
  title       = "elevate"
  description = "Exactly the permissions elevate uses: allow policies of projects, folders and the organization; audit log entries."
  permissions = local.permissions
  stage       = "GA"
}

resource "google_organization_iam_member" "elevate" {
  count  = var.bind_at_organization ? 1 : 0
  org_id = var.org_id
  role   = google_organization_iam_custom_role.elevate.name
  member = google_service_account.elevate.member
}

resource "google_logging_project_bucket_config" "audit" {
  project        = var.project_id
  location       = var.log_bucket_location
  bucket_id      = var.log_bucket_id
  retention_days = var.log_retention_days
  description    = "Cloud Audit Logs of the whole organization, for elevate."
}

resource "google_logging_organization_sink" "audit" {
  name             = var.sink_name
  org_id           = var.org_id
  description      = "Every Cloud Audit Log entry of the organization, for elevate."
  destination      = "logging.googleapis.com/${local.bucket_name}"
  include_children = true
  filter           = "logName:\"cloudaudit.googleapis.com\""

  depends_on = [google_logging_project_bucket_config.audit]
}

# The sink writes into the bucket with its own identity.
resource "google_project_iam_member" "sink_writer" {
  project = var.project_id
  role    = "roles/logging.bucketWriter"
  member  = google_logging_organization_sink.audit.writer_identity

  condition {
    title      = "elevate audit bucket only"
    expression = "resource.name.endsWith(\"locations/${var.log_bucket_location}/buckets/${var.log_bucket_id}\")"
  }
}

# elevate reads the bucket's _AllLogs view, and only that view.
resource "google_project_iam_member" "view_accessor" {
  project = var.project_id
  role    = "roles/logging.viewAccessor"
  member  = google_service_account.elevate.member

  condition {
    title      = "elevate audit view only"
    expression = "resource.name == \"${local.audit_view}\""
  }
}
