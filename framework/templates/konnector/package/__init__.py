"""__NAME__ konnector."""
