"""`/healthz` and `/metrics` on a small threaded HTTP server (stdlib; the collector has no
other HTTP needs)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from .service import Collector


def serve(collector: Collector, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                body = {
                    "ready": collector.healthy,
                    "mqtt": collector.mqtt_connected,
                    "influx": collector.influx_ok,
                    "site": collector.site.site,
                }
                self._send(
                    200 if collector.healthy else 503, "application/json", json.dumps(body).encode()
                )
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(collector.metrics.registry))
            elif path == "/occupancy":
                self._send(200, "application/json", json.dumps(collector.occupancy()).encode())
            else:
                self._send(
                    404,
                    "application/json",
                    json.dumps(
                        {"error": f"no such path {path!r}; try /healthz, /metrics or /occupancy"}
                    ).encode(),
                )

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
