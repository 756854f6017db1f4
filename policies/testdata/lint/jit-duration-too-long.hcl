# jit-duration-too-long: "just in time" access that lasts a week.
role "db-reader" {
  description = "Read production data"
}

jit "db-read" {
  roles        = ["db-reader"]
  requesters   = ["group:sre@example.com"]
  max_duration = "7d" # WARNING: jit-duration-too-long
}

jit "db-read-long" {
  roles        = ["db-reader"]
  requesters   = ["group:analysts@example.com"]
  max_duration = "8h1s" # WARNING: jit-duration-too-long
}
