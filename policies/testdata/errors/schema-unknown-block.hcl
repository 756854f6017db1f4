# Unknown block types, at the top level and inside a role.
policy "db" { # ERROR: schema
}

role "db-admin" {
  kubernetes { # ERROR: schema
    namespace = "db"
  }
}
