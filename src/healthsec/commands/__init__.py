"""CLI command modules. Each module here defines ``register(app)``; ``healthsec.cli`` finds them all."""
