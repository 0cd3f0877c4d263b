"""Sending one e-mail through an SMTP server (STARTTLS, implicit TLS or plain, optional
login): the alerts service's e-mail receiver and footfall-report's monthly mail use the
same server settings and the same session code."""

from __future__ import annotations

import functools
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class SmtpSettings(BaseModel):
    """The mail server e-mail receivers send through; its password stays out of the rules
    file (which is meant to be kept in version control)."""

    model_config = ConfigDict(extra="forbid")

    host: str | None = None
    """Unset: e-mail receivers fail at start with a clear message."""
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    """starttls (port 587), tls (implicit TLS, port 465) or none (a relay on localhost)."""
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "footfall-alerts@localhost"
    ca_certs: Path | None = None
    """CA bundle for the server's certificate (default: the system's)."""
    timeout_s: float = Field(20.0, gt=0)
    default_to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = []
    """Without a rules file: every alert of severity warning or above goes here (the
    alerts service's; other programs accept and ignore it, so one environment file can
    serve every program on a server)."""


@functools.lru_cache(maxsize=4)
def _context(ca_certs: Path | None) -> ssl.SSLContext:
    """Loading the system's CA store takes tens of ms: once per CA file, not per mail."""
    return ssl.create_default_context(cafile=str(ca_certs) if ca_certs else None)


def deliver(settings: SmtpSettings, msg: EmailMessage) -> dict[str, tuple[int, bytes]]:
    """One SMTP session for one message (TLS, STARTTLS or plain, login when set); the
    recipients the server refused while taking it for the others. smtplib's errors
    pass through: each caller decides what is worth a retry."""
    host = settings.host
    if not host:
        raise ValueError("no SMTP server configured (FOOTFALL_SMTP__HOST)")
    context = _context(settings.ca_certs) if settings.security != "none" else None
    client: smtplib.SMTP
    if settings.security == "tls":
        client = smtplib.SMTP_SSL(host, settings.port, timeout=settings.timeout_s, context=context)
    else:
        client = smtplib.SMTP(host, settings.port, timeout=settings.timeout_s)
    with client:
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else ""
            client.login(settings.username, password)
        return client.send_message(msg)
