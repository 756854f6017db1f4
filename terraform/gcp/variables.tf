variable "org_id" {
  description = "Numeric ID of the organization elevate manages (organizations/ORG_ID)."
  type        = string
}

variable "project_id" {
  description = "Admin project that holds elevate's service account and the audit log bucket."
  type        = string
}

variable "service_account_id" {
  description = "Account ID of elevate's service account (the part before @)."
  type        = string
  default     = "elevate"
}

variable "custom_role_id" {
  description = "ID of the organization-level custom role with exactly the permissions elevate uses."
  type        = string
  default     = "elevate"
}

variable "bind_at_organization" {
  description = "Bind the custom role at the organization (elevate may manage every project and folder). Set false and bind it yourself on the folders and projects your policies name to narrow it."
  type        = bool
  default     = true
}

variable "log_bucket_id" {
  description = "ID of the log bucket the organization's audit logs are routed to."
  type        = string
  default     = "elevate-audit"
}

variable "log_bucket_location" {
  description = "Location of the log bucket."
  type        = string
  default     = "global"
}

variable "log_retention_days" {
  description = "Days the log bucket keeps audit entries; elevate's break-glass reviews look back this far."
  type        = number
  default     = 90
}

variable "sink_name" {
  description = "Name of the organization's aggregated log sink."
  type        = string
  default     = "elevate-audit"
}
