"""RTE Ecowatt: the French grid's tension signals, as days and as periods."""
