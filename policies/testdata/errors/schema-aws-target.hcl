# aws blocks are either assume-role (role_name) or Identity Center (instance_arn + permission_set).
role "both-modes" {
  aws { # ERROR: schema
    account        = "123456789012"
    role_name      = "admin"
    instance_arn   = "arn:aws:sso:::instance/ssoins-1234567890abcdef"
    permission_set = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-1234567890abcdef"
  }
}

role "no-mode" {
  aws { # ERROR: schema
    account = "123456789012"
  }
}

role "half-identity-center" {
  aws { # ERROR: schema
    account      = "123456789012"
    instance_arn = "arn:aws:sso:::instance/ssoins-1234567890abcdef"
  }
}

role "bad-values" {
  aws {
    account   = "1234-5678-9012" # ERROR: schema
    role_name = "admin role with spaces" # ERROR: schema
  }
  aws {
    account        = "123456789012"
    instance_arn   = "ssoins-1234567890abcdef" # ERROR: schema
    permission_set = "ps-1234567890abcdef" # ERROR: schema
  }
}
