# What the break-glass accounts hold, standing. This role is deliberately
# reachable through break_glass only: no jit or temporary block may name it
# or any of its targets (lint rule role-shared-jit-breakglass).

role "org-emergency-admin" {
  description = "Full control of the organisation, for when the normal path is down"
  privileged  = true

  gcp {
    resource = "organizations/482913775610"
    role     = "roles/owner"
  }

  aws {
    account   = "998877665544"
    role_name = "OrganizationBreakGlass"
  }

  azure {
    scope           = "/providers/Microsoft.Management/managementGroups/acme-root"
    role_definition = "Owner"
    pim             = false
  }
}
