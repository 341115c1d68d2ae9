"""Former home of the care context; it lives in :mod:`healthsec.model.care` (kept for old imports)."""

from healthsec.model.care import CareContext, normalise_surname

__all__ = ["CareContext", "normalise_surname"]
