"""Stand-ins for the mail server and the chat webhook in the demo: an SMTP server
(aiosmtpd) and an HTTP server that accept everything and print what the alerts service
sends them, so that alerts can be seen without a real mail server or Teams.

    python deploy/dev/catcher.py --smtp-port 18025 --http-port 18026
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def show(what: str, text: str) -> None:
    print(f"--- {time.strftime('%H:%M:%S')} {what}\n{text.strip()}\n", flush=True)


class Mail:
    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        msg = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        body = msg.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        show(f"e-mail to {', '.join(envelope.rcpt_tos)}: {msg['Subject']}", text)
        return "250 OK"


class Webhook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        show(f"webhook {self.path}", body.decode(errors="replace"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smtp-port", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    args = p.parse_args()
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # inherited by every thread
    # server_hostname: otherwise aiosmtpd asks DNS for this host's name (getfqdn), which
    # can hang on a machine without a resolver.
    smtp = Controller(
        Mail(), hostname="127.0.0.1", port=args.smtp_port, server_hostname="localhost"
    )
    smtp.start()
    http = ThreadingHTTPServer(("127.0.0.1", args.http_port), Webhook)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    print(f"catching e-mail on 127.0.0.1:{args.smtp_port}, webhooks on :{args.http_port}")
    sys.stdout.flush()
    # No Python signal handler: one that sets a threading.Event can deadlock on the lock
    # the main thread holds inside Event.wait (the demo's Ctrl-C once hung here for 20 s).
    # The signals were blocked before any thread started, so only this wait receives them.
    signal.sigwait(STOP_SIGNALS)
    # Nothing is kept, so leave at once: aiosmtpd's stop() and the interpreter's exit
    # wait without a limit for its sessions and helper threads.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
