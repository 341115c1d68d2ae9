"""Use cases the CLI, the API and the console share."""
