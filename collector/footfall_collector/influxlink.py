"""What the log says when InfluxDB cannot be used: a short, stable reason and what to
check, once per change rather than once per failed request, for every service that uses
InfluxDB (collector, alerts, web)."""

from __future__ import annotations

import logging
import re

from footfall_runtime.linklog import LinkLog

from .config import InfluxSettings

_WHERE = "influx.url (FOOTFALL_INFLUX__URL)"
_ADDRESS = re.compile(r" (object )?at 0x[0-9a-f]+")


def explain_influx_error(exc: BaseException | None, settings: InfluxSettings) -> tuple[str, str]:
    """(short, stable reason; what to check) for a failed InfluxDB request, from the
    error's text (urllib3's messages carry object addresses that change every time)."""
    if exc is None:
        return ("no answer to /ping", f"{_WHERE} and that InfluxDB runs there")
    text = str(exc)
    low = text.lower()
    if "refused" in low and "connection" in low and "influxdb refused" not in low:
        return ("connection refused", f"{_WHERE} and that InfluxDB runs there")
    if "name or service not known" in low or "name resolution" in low or "nodename" in low:
        return ("host name not found", f"the host in {_WHERE} and the DNS")
    if "timed out" in low or "timeout" in low:
        return ("no answer (timed out)", f"{_WHERE}, the network and any firewall between")
    if "certificate" in low or "ssl" in low:
        return ("TLS error", f"{_WHERE} (https://) and the server's certificate")
    if "(401)" in low or "answered 401" in low or "(403)" in low or "answered 403" in low:
        who = "influx.token" if settings.token else "influx.username and influx.password"
        return ("credentials refused", f"{who} (FOOTFALL_INFLUX__...) and the user's rights")
    if "database not found" in low:
        return (
            f"database {settings.database!r} does not exist",
            "influx.database, or let the collector create it (influx.create_database)",
        )
    if "retention policy not found" in low:
        return ("retention policy not found", "influx.retention_policy")
    m = re.search(r"\((\d{3})\)|answered (\d{3})", text)
    if m:
        return (f"answered HTTP {m.group(1) or m.group(2)}", "InfluxDB's log")
    return (_ADDRESS.sub("", text)[:200], f"{_WHERE} and InfluxDB's log")


class InfluxLink:
    """What the log says about InfluxDB: each failure once with its reason and what to
    check, again when the reason changes, and the recovery once."""

    def __init__(self, settings: InfluxSettings, logger: logging.Logger, meanwhile: str) -> None:
        self.settings = settings
        self.meanwhile = meanwhile
        self.log = LinkLog(logger, f"InfluxDB {settings.url} reachable again")

    def failed(self, exc: BaseException | None = None) -> bool:
        """A failure; without `exc` (a failed ping) only when nothing was said yet."""
        if exc is None and self.log.failing:
            return False
        reason, check = explain_influx_error(exc, self.settings)
        tail = f". {self.meanwhile}" if self.meanwhile else ""
        return self.log.failed(
            reason, f"InfluxDB {self.settings.url}: {reason}; check {check}{tail}"
        )

    def ok(self) -> bool:
        return self.log.ok()
