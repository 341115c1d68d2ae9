"""One network capture's flows as the device identifier sees them (built by the pcap reader in ingest).

``frame`` is a polars DataFrame; polars is named for type checking only, so ``model`` imports no library.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl


@dataclass
class Capture:
    """One capture's flows: the nfstream feature frame plus the server name / application per flow."""

    name: str
    frame: pl.DataFrame
    server_names: list[str | None]
    applications: list[str | None]
    clients: list[str | None] = field(default_factory=list)  # source IP of each flow, when known

    @property
    def host(self) -> str | None:
        """The address that opened most of the capture's flows (the device or its companion phone)."""
        counts = Counter(c for c in self.clients if c)
        return counts.most_common(1)[0][0] if counts else None
