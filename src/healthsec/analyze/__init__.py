"""Analysis: correlate alerts into incidents, ATT&CK knowledge, asset risk and attack paths (no I/O)."""
