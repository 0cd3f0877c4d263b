"""E-mail through an SMTP server: STARTTLS or implicit TLS, optional login."""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from footfall_runtime.smtp import SmtpSettings, deliver

from . import Refused, Retryable, text


def build(
    settings: SmtpSettings, to: list[str], notification: Mapping[str, Any], key: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = ", ".join(to)
    msg["Subject"] = text.subject(notification)
    msg["Date"] = formatdate(notification["ts_ms"] / 1000, localtime=False)
    # Stable per outbox entry: if a crash makes us send it again, mail clients and
    # servers see the same message.
    msg["Message-ID"] = f"<{key}@footfall-alerts>"
    msg["X-Footfall-Alert-Event"] = notification["event"]
    msg["X-Footfall-Alert-Ids"] = ",".join(a["id"] for a in notification["alerts"])
    msg.set_content(text.body(notification))
    return msg


def send(settings: SmtpSettings, to: list[str], notification: Mapping[str, Any], key: str) -> None:
    if not settings.host:
        raise Refused("no SMTP server configured (FOOTFALL_SMTP__HOST)")
    msg = build(settings, to, notification, key)
    try:
        refused = deliver(settings, msg)
    except smtplib.SMTPAuthenticationError as exc:
        # Credentials being fixed by an operator: keep the message and try again.
        raise Retryable(f"SMTP login refused: {exc.smtp_code} {exc.smtp_error!r}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if all(code >= 500 for code in codes):
            raise Refused(f"every recipient refused: {exc.recipients}") from None
        raise Retryable(f"recipients refused for now: {exc.recipients}") from None
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code >= 500:
            raise Refused(
                f"SMTP server refused the message: {exc.smtp_code} {exc.smtp_error!r}"
            ) from None
        raise Retryable(f"SMTP server says {exc.smtp_code} {exc.smtp_error!r}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise Retryable(f"SMTP server {settings.host}:{settings.port}: {exc}") from None
    if refused:
        # Some recipients took it: sending again would duplicate it for them.
        raise Refused(f"some recipients refused: {refused}")
