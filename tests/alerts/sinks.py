"""Real receivers on loopback for the alert tests: an SMTP server (aiosmtpd) that can be
stopped and started on its port, and an HTTP webhook receiver (http.server); both keep
what they received."""

from __future__ import annotations

import email
import email.policy
import json
import ssl
import threading
import time
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from footfall_sim.localservices import free_port


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        with self.sink.lock:
            self.sink.messages.append(msg)
            self.sink.recipients.append(list(envelope.rcpt_tos))
            self.sink.received_at.append(time.time())
        return "250 OK"


class SmtpSink:
    """aiosmtpd on 127.0.0.1:`port`; `tls_dir` (server.crt, server.key) adds STARTTLS (or
    TLS from the first byte, `implicit_tls`) and requires AUTH LOGIN/PLAIN with
    `credentials`."""

    def __init__(
        self,
        tls_dir: Path | None = None,
        credentials: tuple[str, str] | None = None,
        implicit_tls: bool = False,
    ) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self.received_at: list[float] = []
        """time.time() of each message, for latency figures (benchmarks/alerts.py)."""
        self.lock = threading.Lock()
        self.tls_dir = tls_dir
        self.credentials = credentials
        self.implicit_tls = implicit_tls
        self.controller: Controller | None = None

    def _auth(self, _server: SMTP, _session: Session, _env: Envelope, mech: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and self.credentials == (
            data.login.decode(),
            data.password.decode(),
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.tls_dir is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.tls_dir / "server.crt", self.tls_dir / "server.key")
            kwargs = {"authenticator": self._auth, "auth_required": True}
            if self.implicit_tls:
                kwargs.update(ssl_context=context, auth_require_tls=False)
            else:
                kwargs.update(tls_context=context, require_starttls=True)
        self.controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, ready_timeout=10, **kwargs
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def subjects(self) -> list[str]:
        with self.lock:
            return [str(m["Subject"]) for m in self.messages]

    def bodies(self) -> list[str]:
        with self.lock:
            out = []
            for m in self.messages:
                part = m.get_body(("plain",))
                out.append(part.get_content() if part is not None else "")
            return out


class WebhookSink:
    """POSTs to http://127.0.0.1:`port`/...; answers `status` (settable)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        self.received_at: list[float] = []
        self.status = 200
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with sink.lock:
                    status = sink.status
                    if status < 300:
                        sink.requests.append((self.path, dict(self.headers), body))
                        sink.received_at.append(time.time())
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str | None = None) -> list[Any]:
        with self.lock:
            return [b for p, _, b in self.requests if path is None or p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
