"""Built-in konnectors, one package per provider."""
