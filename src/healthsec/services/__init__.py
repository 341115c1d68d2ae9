"""The use cases, each written once: the CLI, the REST API and the console call these and nothing else."""
