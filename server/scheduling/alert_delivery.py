"""Delivering alert events: a webhook (JSON, signed with HMAC-SHA256 in
``X-Frazil-Signature: sha256=<hex>``) and e-mail (the server's SMTP
settings; :mod:`smtplib` in a thread, so the event loop never blocks)."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
from email.message import EmailMessage
from typing import Any

import aiohttp

from server.settings import Settings

WEBHOOK_TIMEOUT = 10.0


class DeliveryError(Exception):
    """A channel did not take the event (retried later)."""


def signature(secret: str, body: bytes) -> str:
    """What a receiver recomputes over the raw body to trust the event."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


async def send_webhook(url: str, secret: str, payload: dict[str, Any]) -> None:
    body = body_of(payload)
    headers = {"Content-Type": "application/json", "X-Frazil-Event": str(payload.get("event", ""))}
    if secret:
        headers["X-Frazil-Signature"] = signature(secret, body)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT)) as session:
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as reply:
                if reply.status // 100 != 2:
                    raise DeliveryError(f"webhook answered {reply.status}")
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        raise DeliveryError(f"webhook: {type(exc).__name__}: {exc}"[:300]) from None


def _send_mail(settings: Settings, to: str, subject: str, text: str) -> None:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=WEBHOOK_TIMEOUT) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(message)


async def send_email(settings: Settings, to: str, payload: dict[str, Any]) -> None:
    if not settings.smtp_host:
        raise DeliveryError("e-mail: the server has no smtp_host setting")
    subject = (f"[frazil] quarantined {payload.get('kind')} {payload.get('name')}"
               if payload.get("event") == "quarantine"
               else f"[frazil] dataset {payload.get('dataset')}: {payload.get('event')}")
    text = f"{payload.get('text', '')}\n\n{json.dumps(payload, indent=2, sort_keys=True)}\n"
    try:
        await asyncio.to_thread(_send_mail, settings, to, subject, text)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"e-mail: {type(exc).__name__}: {exc}"[:300]) from None
