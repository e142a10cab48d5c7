"""Versioned message contracts: the only code services share about each other."""
