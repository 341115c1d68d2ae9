"""Use cases, each written once; the CLI, the API and the console call them."""
