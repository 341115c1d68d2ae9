"""The HTTP API (FastAPI): REST v1 with token auth and tenants; ``create_app(settings)`` builds it."""

from healthsec.api.app import create_app

__all__ = ["create_app"]
