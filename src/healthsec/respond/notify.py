"""Notification senders: webhook (JSON, HMAC-SHA256 signed), SMTP e-mail, and apprise (chat, pager).

Messages are built from case ids, severities, states and a console link only: they never carry PHI.
A sender raises :class:`DeliveryError` when the target did not take the message; the outbox
dispatcher then retries with backoff and finally dead-letters it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

import orjson

SIGNATURE_HEADER = "X-Healthsec-Signature"
TIMESTAMP_HEADER = "X-Healthsec-Timestamp"


class DeliveryError(RuntimeError):
    """The target did not accept the message; the text names the target kind and the reason only."""


class Sender(Protocol):
    def send(self, message: Mapping[str, Any]) -> None: ...


def text_of(message: Mapping[str, Any]) -> str:
    """The plain-text form of a message (the same fields every channel gets)."""
    keys = ("event", "case", "severity", "status", "at", "link")
    return "\n".join(f"{k}: {message.get(k)}" for k in keys if message.get(k) is not None)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``timestamp + "." + body``; receivers recompute it, compare in constant time."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass
class WebhookSender:
    url: str
    secret: bytes | None = None
    timeout: float = 10.0

    def send(self, message: Mapping[str, Any]) -> None:
        import httpx

        body = orjson.dumps(dict(message), option=orjson.OPT_SORT_KEYS)
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: ts}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, ts, body)
        try:
            resp = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook: {type(exc).__name__}") from None
        if resp.status_code >= 300:
            raise DeliveryError(f"webhook: HTTP {resp.status_code}")


@dataclass
class SmtpSender:
    host: str
    port: int
    sender: str
    recipients: Sequence[str]
    timeout: float = 10.0

    def send(self, message: Mapping[str, Any]) -> None:
        import smtplib

        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail["Subject"] = str(message.get("subject") or f"healthsec: {message.get('event')}")
        mail.set_content(text_of(message) + "\n")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls()
                    smtp.ehlo()
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"smtp: {type(exc).__name__}") from None


@dataclass
class AppriseSender:
    urls: Sequence[str]

    def send(self, message: Mapping[str, Any]) -> None:
        try:
            import apprise
        except ImportError:
            raise DeliveryError("apprise: not installed (pip install apprise)") from None
        app = apprise.Apprise()
        for url in self.urls:
            if not app.add(url):
                raise DeliveryError("apprise: a configured URL is not understood")
        if not app.notify(title=str(message.get("subject") or "healthsec"), body=text_of(message)):
            raise DeliveryError("apprise: no service accepted the message")


def senders_from_settings(settings: Any) -> dict[str, Sender]:
    """The channels the settings configure (webhook, email, apprise); none by default."""
    out: dict[str, Sender] = {}
    if settings.notify_webhook_url:
        secret = None
        if settings.notify_webhook_secret_file is not None:
            secret = settings.notify_webhook_secret_file.read_bytes().strip()
        out["webhook"] = WebhookSender(settings.notify_webhook_url, secret)
    if settings.notify_smtp_host and settings.notify_email_to:
        if not settings.notify_smtp_from:
            raise ValueError("notify_smtp_from is required when notify_smtp_host is set")
        out["email"] = SmtpSender(
            settings.notify_smtp_host,
            settings.notify_smtp_port,
            settings.notify_smtp_from,
            settings.notify_email_to,
        )
    if settings.notify_apprise_urls:
        out["apprise"] = AppriseSender(settings.notify_apprise_urls)
    return out
