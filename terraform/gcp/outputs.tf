output "service_account_email" {
  description = "elevate's service account: run the daemon as it (workload identity, no keys) and list it in the audit source's self setting."
  value       = google_service_account.elevate.email
}

output "custom_role" {
  description = "Full name of the custom role (organizations/ORG_ID/roles/ROLE_ID), to bind on folders or projects when bind_at_organization is false."
  value       = google_organization_iam_custom_role.elevate.name
}

output "audit_parent" {
  description = "The parents setting of elevate's GCP audit source: the log bucket view the sink fills."
  value       = local.audit_view
}

output "sink_writer_identity" {
  description = "Identity the aggregated sink writes with."
  value       = google_logging_organization_sink.audit.writer_identity
}
