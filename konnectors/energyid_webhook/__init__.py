"""EnergyID Webhook V2: a sink that pushes collected data to an EnergyID record."""
