"""Structured JSON logging with PHI and secret redaction in the chain, so no handler sees raw values."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from healthsec.privacy.phi import scrub_text

_SECRETS = (
    (re.compile(r"(://[^:/\s@]+:)[^@\s]+(@)"), r"\1***\2"),  # passwords in URLs
    (re.compile(r"(?i)\b(authorization:\s*(?:bearer|basic)\s+)\S+"), r"\1***"),
    (re.compile(r"(?i)\b((?:token|password|passwd|secret|api[_-]?key)\s*[=:]\s*)\S+"), r"\1***"),
    (re.compile(r"\bhs_[A-Za-z0-9_\-]{16,}"), "***"),  # healthsec API tokens
)


def redact(text: str) -> str:
    """Remove secrets, then PHI (names, MRNs, dates of birth, phones, addresses, emails, ids)."""
    for rx, replacement in _SECRETS:
        text = rx.sub(replacement, text)
    return scrub_text(text)


class RedactingFilter(logging.Filter):
    """Renders each record's message once and replaces it by its redacted form."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (already redacted) and extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def configure_logging(level: str = "WARNING") -> None:
    """Install the redacting JSON handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_healthsec", False):
            root.removeHandler(h)
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    handler._healthsec = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())


class DependencyWatch:
    """One log line when a dependency (database, broker) is lost and one when it is back; no tracebacks.

    Expected outages are not bugs: between the two lines every further failure is only counted, so a
    10-second outage writes two lines whatever the request or retry rate.
    """

    def __init__(self, name: str, logger: logging.Logger | None = None) -> None:
        self.name = name
        self.log = logger or logging.getLogger("healthsec.dependency")
        self.down = False
        self.failures = 0
        self.outages = 0

    def lost(self, reason: BaseException | str) -> None:
        """Note a failure; log only the first one of an outage (the reason's type, never its text)."""
        self.failures += 1
        if self.down:
            return
        self.down = True
        self.outages += 1
        what = reason if isinstance(reason, str) else type(reason).__name__
        self.log.warning("%s unavailable (%s); retrying", self.name, what)

    def ok(self) -> None:
        """Note a success; log once when it ends an outage."""
        if not self.down:
            return
        self.down = False
        self.log.warning("%s available again after %d failed attempts", self.name, self.failures)
        self.failures = 0
