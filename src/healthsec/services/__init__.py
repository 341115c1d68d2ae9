"""Use cases written once and called by the CLI, the API and the console (thin adapters around them)."""
