"""GRDF ADICT: daily gas consumption of a PCE, with consent by OAuth or declared access right."""
