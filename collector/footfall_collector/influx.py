"""InfluxDB adapters: the v1 HTTP API (`/write`, `/query`; InfluxDB 1.x, and 2.x/3.x
through their v1-compatible endpoints) and the 2.x native write API via influxdb-client.

Errors are sorted into retryable (the database is away, overloaded, or answered 5xx:
InfluxDB 1.x says "engine: error syncing wal" under load although the points may be
stored, and re-writing a point is idempotent) and permanent (the points themselves are
refused: retrying cannot help)."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any, Protocol
from urllib.parse import urlencode

import urllib3

from .config import InfluxSettings, duration_days
from .influxlink import InfluxLink as InfluxLink
from .influxlink import explain_influx_error as explain_influx_error
from .influxql import influxql_string as influxql_string
from .schema import ROLLUP_RP

log = logging.getLogger(__name__)


class RetryableWriteError(Exception):
    pass


class PermanentWriteError(Exception):
    """Points InfluxDB refuses. `partial`: it wrote the request's other points and
    dropped `dropped` (InfluxDB 1.x's "partial write" answer), so nothing is to be
    sent again; otherwise nothing of the request was written. `reason` is a label."""

    def __init__(
        self, message: str, *, partial: bool = False, dropped: int = 0, reason: str = "refused"
    ) -> None:
        super().__init__(message)
        self.partial = partial
        self.dropped = dropped
        self.reason = reason


_REFUSALS = (
    ("field type conflict", "field_type_conflict"),
    ("max-values-per-tag", "max_values_per_tag"),
    ("max-series-per-database", "max_series"),
    ("beyond retention policy", "beyond_retention"),
    ("unable to parse", "unparseable"),
)
_DROPPED = re.compile(r"dropped=(\d+)")


def refusal(status: int, text: str) -> PermanentWriteError:
    """The error for a refused write, from InfluxDB's answer: whether the other points
    were written, how many were dropped and why. InfluxDB 1.x writes every valid point of
    a request and answers 400 "partial write: <reason> dropped=N" (a line it cannot
    parse is named, with dropped=0); 2.x says the same with 422."""
    partial = "partial write" in text
    reason = next((label for needle, label in _REFUSALS if needle in text), "refused")
    m = _DROPPED.search(text)
    dropped = int(m.group(1)) if m else 0
    if reason == "unparseable":
        dropped = max(dropped, text.count("unable to parse"))
    return PermanentWriteError(
        f"InfluxDB refused points ({status}): {text[:500]}",
        partial=partial,
        dropped=max(dropped, 1) if partial else dropped,
        reason=reason,
    )


def _request_level(text: str) -> bool:
    """Refusals of the whole request that the operator fixes (a policy or database not
    there yet): wait, as for a 404, rather than drop."""
    return "retention policy not found" in text or "database not found" in text


class Influx(Protocol):
    def write(self, lines: list[str], rp: str | None = None) -> None: ...
    def query(self, q: str, epoch: str = "ns") -> list[dict[str, Any]]: ...
    def query_chunks(
        self, q: str, epoch: str = "ns", chunk_size: int = 10_000
    ) -> Iterator[dict[str, Any]]: ...
    def ping(self) -> bool: ...
    def ensure_database(self) -> None: ...
    def close(self) -> None: ...


def shard_duration(duration: str) -> str:
    """InfluxDB's own default shard group duration for a retention duration, said
    explicitly: altering a policy keeps its old shard duration, and InfluxDB refuses a
    retention shorter than that (autogen's is 7 days)."""
    days = duration_days(duration)
    if days is None or days >= 180:
        return "7d"
    return "1d" if days >= 2 else "1h"


class InfluxV1:
    """Line protocol over `/write`, InfluxQL over `/query`."""

    def __init__(self, settings: InfluxSettings, pool_size: int = 4) -> None:
        """`pool_size`: connections kept for reuse; at least the number of threads that
        query at once, or urllib3 discards the extra ones with a warning."""
        self.settings = settings
        self.url = settings.url.rstrip("/")
        self.database = settings.database
        self._http = urllib3.PoolManager(
            maxsize=pool_size,
            retries=False,
            timeout=urllib3.Timeout(connect=3.0, read=settings.timeout_s),
        )
        self._headers: dict[str, str] = {}
        if settings.token:
            self._headers["Authorization"] = f"Token {settings.token.get_secret_value()}"
        elif settings.username:
            password = settings.password.get_secret_value() if settings.password else ""
            self._headers.update(urllib3.make_headers(basic_auth=f"{settings.username}:{password}"))

    def _request(
        self, method: str, path: str, fields: dict[str, str], body: bytes | None = None
    ) -> urllib3.BaseHTTPResponse:
        url = f"{self.url}{path}"
        try:
            if body is None:
                return self._http.request(method, url, fields=fields, headers=self._headers)
            query = urlencode(fields)
            return self._http.request(
                method,
                f"{url}?{query}",
                body=body,
                headers={**self._headers, "Content-Type": "text/plain; charset=utf-8"},
            )
        except urllib3.exceptions.HTTPError as exc:
            raise RetryableWriteError(f"InfluxDB at {self.url} unreachable: {exc}") from None

    def write(self, lines: list[str], rp: str | None = None) -> None:
        """Write to `rp`, by default the raw events' policy."""
        if not lines:
            return
        params = {"db": self.database, "precision": "ns"}
        if rp or self.settings.retention_policy:
            params["rp"] = rp or self.settings.retention_policy or ""
        r = self._request("POST", "/write", params, "\n".join(lines).encode())
        if r.status in (200, 204):
            return
        text = r.data.decode(errors="replace")
        if r.status >= 500 or r.status in (401, 403, 404, 408, 429) or _request_level(text):
            # 404: no database yet; 401/403: credentials being fixed; all wait, not drop.
            raise RetryableWriteError(f"InfluxDB answered {r.status}: {text[:500]}")
        raise refusal(r.status, text)

    def query(self, q: str, epoch: str = "ns") -> list[dict[str, Any]]:
        """Series of the first statement's result, as InfluxDB returns them."""
        r = self._request("POST", "/query", {"db": self.database, "q": q, "epoch": epoch})
        if r.status != 200:
            raise RetryableWriteError(f"query failed ({r.status}): {r.data[:300]!r}")
        body = json.loads(r.data)
        results = body.get("results", [{}])
        if results and "error" in results[0]:
            raise PermanentWriteError(f"query error: {results[0]['error']}")
        series: list[dict[str, Any]] = results[0].get("series", []) if results else []
        return series

    def query_chunks(
        self, q: str, epoch: str = "ns", chunk_size: int = 10_000
    ) -> Iterator[dict[str, Any]]:
        """The series of one statement's result as InfluxDB streams them (`chunked=true`),
        at most `chunk_size` rows each: memory bounded by a chunk, not by the result."""
        fields = {
            "db": self.database,
            "q": q,
            "epoch": epoch,
            "chunked": "true",
            "chunk_size": str(chunk_size),
        }
        try:
            r = self._http.request(
                "POST",
                f"{self.url}/query",
                fields=fields,
                headers=self._headers,
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise RetryableWriteError(f"InfluxDB at {self.url} unreachable: {exc}") from None
        try:
            if r.status != 200:
                raise RetryableWriteError(f"query failed ({r.status}): {r.read()[:300]!r}")
            rest = b""
            for block in r.stream(256 * 1024):
                rest += block
                *lines, rest = rest.split(b"\n")
                for line in lines:
                    yield from self._chunk_series(line)
            yield from self._chunk_series(rest)
        except urllib3.exceptions.HTTPError as exc:
            raise RetryableWriteError(f"InfluxDB query interrupted: {exc}") from None
        finally:
            r.release_conn()

    @staticmethod
    def _chunk_series(line: bytes) -> Iterator[dict[str, Any]]:
        if not line.strip():
            return
        for result in json.loads(line).get("results", []):
            if "error" in result:
                raise PermanentWriteError(f"query error: {result['error']}")
            yield from result.get("series", [])

    def ping(self) -> bool:
        try:
            r = self._http.request("GET", f"{self.url}/ping", headers=self._headers, timeout=2.0)
        except urllib3.exceptions.HTTPError:
            return False
        return r.status in (200, 204)

    def ensure_database(self) -> None:
        """Create the database, set the raw events' retention and create the rollups'
        policy (docs/history.md), when allowed."""
        if not self.settings.create_database:
            return
        db = self.database
        self._admin(f'CREATE DATABASE "{db}"')
        raw, duration = self.settings.retention_policy, self.settings.retention_duration
        if duration is not None:
            if raw:
                self._create_or_alter(
                    f'RETENTION POLICY "{raw}" ON "{db}" DURATION {duration} REPLICATION 1 '
                    f"SHARD DURATION {shard_duration(duration)} DEFAULT"
                )
            else:
                self._admin(
                    f'ALTER RETENTION POLICY "autogen" ON "{db}" DURATION {duration} '
                    f"SHARD DURATION {shard_duration(duration)}"
                )
        rollups = self.settings.rollup_retention
        self._create_or_alter(
            f'RETENTION POLICY "{ROLLUP_RP}" ON "{db}" DURATION {rollups} REPLICATION 1 '
            f"SHARD DURATION {shard_duration(rollups)}"
        )

    def _create_or_alter(self, policy: str) -> None:
        try:
            self._admin(f"CREATE {policy}")
        except PermanentWriteError as exc:
            if "already exists" not in str(exc):
                raise
            self._admin(f"ALTER {policy}")

    def _admin(self, q: str) -> None:
        r = self._request("POST", "/query", {"q": q})
        if r.status != 200:
            raise RetryableWriteError(f"{q}: {r.status} {r.data[:300]!r}")
        results = json.loads(r.data).get("results", [{}])
        if results and "error" in results[0]:
            raise PermanentWriteError(f"{q}: {results[0]['error']}")

    def close(self) -> None:
        self._http.clear()


class InfluxV2(InfluxV1):
    """InfluxDB 2.x: writes through influxdb-client (token, org, bucket); queries and
    health through the v1-compatible endpoints, which 2.x serves for a mapped bucket."""

    def __init__(self, settings: InfluxSettings, pool_size: int = 4) -> None:
        super().__init__(settings, pool_size)
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        if not settings.token or not settings.org or not settings.bucket:
            raise ValueError("the 2.x API needs influx.token, influx.org and influx.bucket")
        self._bucket, self._org = settings.bucket, settings.org
        self._client = InfluxDBClient(
            url=self.url,
            token=settings.token.get_secret_value(),
            org=settings.org,
            timeout=int(settings.timeout_s * 1000),
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, lines: list[str], rp: str | None = None) -> None:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException

        if not lines:
            return
        try:
            self._write_api.write(
                bucket=f"{self._bucket}-{rp}" if rp else self._bucket,
                org=self._org,
                record=lines,
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]
            )
        except ApiException as exc:
            # status 0 or None: influxdb-client's way of saying the request never got an
            # answer (TLS error, reset connection)
            body = str(exc.body or "")
            if (
                not exc.status
                or exc.status >= 500
                or exc.status in (401, 403, 404, 408, 429)
                or _request_level(body)
            ):
                raise RetryableWriteError(f"InfluxDB answered {exc.status}: {exc.reason}") from None
            raise refusal(exc.status, body) from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise RetryableWriteError(f"InfluxDB at {self.url} unreachable: {exc}") from None

    def ensure_database(self) -> None:
        """Buckets are created by the operator in 2.x (with a retention period)."""

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]
        super().close()


def connect(settings: InfluxSettings, pool_size: int = 4) -> Influx:
    if settings.api == "v2":
        return InfluxV2(settings, pool_size)
    return InfluxV1(settings, pool_size)


class InfluxWatch:
    """For a service that uses InfluxDB only on request (footfall-web): asks it at start
    and then every `interval_s` whether it answers, with a query on the database (which
    needs the credentials and the database too, unlike /ping), so that the log says at
    start, not at the first failing page, that InfluxDB cannot be used."""

    def __init__(self, influx: Influx, link: InfluxLink, interval_s: float = 30.0) -> None:
        self.influx = influx
        self.link = link
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> bool:
        try:
            self.influx.query("SHOW RETENTION POLICIES")
        except (RetryableWriteError, PermanentWriteError) as exc:
            self.link.failed(exc)
            return False
        self.link.ok()
        return True

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="influx-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                self.check()
            except Exception:  # a watcher must never take the service down
                log.exception("InfluxDB check failed")
            if self._stop.wait(self.interval_s):
                return
