"""Météo-France DPObs: hourly weather observations of one station."""
