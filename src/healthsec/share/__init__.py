"""Sharing with partner hospitals: STIX 2.1, TAXII 2.1, MISP, TLP 2.0 and per-partner policy."""
