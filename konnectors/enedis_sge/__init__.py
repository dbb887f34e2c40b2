"""Enedis SGE: the B2B SOAP services suppliers use, with the customer's identity as consent."""
