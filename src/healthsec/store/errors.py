"""The store's error type, in a module of its own so that catching it does not import SQLAlchemy."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The store cannot be opened or used; the message is one line meant for a person."""
