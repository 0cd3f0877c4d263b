"""`/healthz`, `/metrics` and `/occupancy` on a small threaded HTTP server (stdlib; the
collector has no other HTTP needs). It knows the service only by what it shows
(`Watched`): the caller (cli.py) starts it and passes the service in."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from footfall_contract.shards import Shard

from .metrics import Metrics


class Watched(Protocol):
    """What the endpoints show of a running collector."""

    @property
    def sites(self) -> list[str]: ...
    @property
    def shard(self) -> Shard | None: ...
    @property
    def multi(self) -> bool: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def healthy(self) -> bool: ...
    @property
    def mqtt_connected(self) -> bool: ...
    @property
    def influx_ok(self) -> bool: ...
    def occupancy(self, site_id: str | None = None) -> dict[str, Any]: ...


def serve(collector: Watched, host: str, port: int) -> ThreadingHTTPServer:
    """Serving on a daemon thread; `shutdown()` and `server_close()` it at stop."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            params = parse_qs(query)
            if path == "/healthz":
                body: dict[str, Any] = {
                    "ready": collector.healthy,
                    "mqtt": collector.mqtt_connected,
                    "influx": collector.influx_ok,
                    "sites": collector.sites,
                    "shard": str(collector.shard) if collector.shard else None,
                }
                if not collector.multi:
                    body["site"] = collector.sites[0]
                self._send(
                    200 if collector.healthy else 503, "application/json", json.dumps(body).encode()
                )
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(collector.metrics.registry))
            elif path == "/occupancy":
                site_id = params.get("site", [None])[0]
                occupancy = collector.occupancy(site_id)
                self._send(200, "application/json", json.dumps(occupancy).encode())
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
