# Attributes belong inside blocks.
max_duration = "1h" # ERROR: schema
