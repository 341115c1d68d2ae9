"""Federated training across hospitals on Flower: no raw data leaves a member, only (masked) model updates.

Importing this package forces Flower's telemetry off and runtime dependency installation off in this
process and every process it starts (the environment is inherited), before Flower is imported.
"""

from __future__ import annotations

from healthsec.config import hand_down

hand_down({"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1"})
