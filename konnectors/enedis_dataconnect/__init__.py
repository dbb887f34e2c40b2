"""Enedis Data Connect (DataHub): daily consumption, load curve and max power of a usage point."""
