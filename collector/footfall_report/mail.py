"""The monthly report by e-mail, sent once per site and month.

`footfall-report mail-monthly` is run daily (a systemd timer). On or after the 1st it
mails last month's report, then records (site, month) in a ledger (SQLite in the state
directory). The ledger row is written in the same transaction that, while the mail is
being sent, holds the database's write lock: a second run (or one started meanwhile)
finds the row, or waits for the first to finish and then finds it. When sending fails
the transaction is rolled back, nothing is recorded and the next run tries again. A
crash after the server took the mail but before the commit can send it once more; the
Message-ID is the same, so mail clients can tell.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import sqlite3
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Literal

from footfall_collector.influx import Influx
from footfall_contract.hours import reset_on
from footfall_contract.site import Site
from footfall_runtime.smtp import SmtpSettings, deliver

from .model import Report
from .periods import Period, month_period
from .render import XLSX_MEDIA_TYPE, render_csv, render_html, render_table, render_xlsx
from .source import load_report

__all__ = ["LEDGER_FILE", "Ledger", "MailError", "MailOutcome", "mail_monthly", "ready_at"]

LEDGER_FILE = "report-mail.sqlite"
XLSX_TYPE = tuple(XLSX_MEDIA_TYPE.split("/", 1))


class MailError(Exception):
    """The report could not be mailed (nothing was recorded: the next run retries)."""


@dataclass(frozen=True)
class MailOutcome:
    status: Literal["sent", "already_sent", "too_early"]
    site: str
    month: str
    detail: str = ""


class Ledger:
    """(site, month) -> when and to whom the report went."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / LEDGER_FILE
        # isolation_level None: transactions are begun and ended explicitly below.
        self.db = sqlite3.connect(self.path, timeout=300, isolation_level=None)
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS sent (site TEXT NOT NULL, month TEXT NOT NULL, "
            "sent_at TEXT NOT NULL, recipients TEXT NOT NULL, message_id TEXT NOT NULL, "
            "PRIMARY KEY (site, month))"
        )

    def sent(self) -> list[tuple[str, str, str, str]]:
        rows = self.db.execute(
            "SELECT site, month, sent_at, recipients FROM sent ORDER BY site, month"
        ).fetchall()
        return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]

    def close(self) -> None:
        self.db.close()


def ready_at(site: Site, month: Period) -> dt.datetime:
    """When `month`'s report is complete: an hour after the site's daily reset on the 1st
    of the next month, when the last day's window has been closed and rolled up."""
    return reset_on(site, month.last + dt.timedelta(days=1)) + dt.timedelta(hours=1)


def last_month(site: Site, now: dt.datetime) -> Period:
    today = now.astimezone(site.tz).date()
    last = today.replace(day=1) - dt.timedelta(days=1)
    return month_period(last.year, last.month, site.tz)


def mail_monthly(
    influx: Influx,
    site: Site,
    smtp: SmtpSettings,
    recipients: list[str],
    state_dir: Path,
    now: dt.datetime,
    month: Period | None = None,
) -> MailOutcome:
    """Mail `month`'s report (default: last month) unless the ledger says it went."""
    period = month or last_month(site, now)
    if now < ready_at(site, period):
        return MailOutcome(
            "too_early",
            site.site,
            period.key,
            f"the report of {period.key} is complete from {ready_at(site, period):%Y-%m-%d %H:%M}",
        )
    try:
        ledger = Ledger(state_dir)
    except (OSError, sqlite3.Error) as exc:
        raise MailError(f"cannot open the ledger in {state_dir}: {exc}") from None
    try:
        db = ledger.db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise MailError(f"ledger {ledger.path}: {exc}") from None
        try:
            row = db.execute(
                "SELECT sent_at FROM sent WHERE site = ? AND month = ?", (site.site, period.key)
            ).fetchone()
            if row is not None:
                db.execute("ROLLBACK")
                return MailOutcome("already_sent", site.site, period.key, f"sent {row[0]}")
            report = load_report(influx, site, period, now=now)
            message_id = f"<footfall-report.{site.site}.{period.key}@footfall>"
            msg = build_message(smtp, recipients, report_parts(report), message_id, now)
            refused = send(smtp, msg)
            db.execute(
                "INSERT INTO sent (site, month, sent_at, recipients, message_id) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    site.site,
                    period.key,
                    now.astimezone(dt.UTC).isoformat(timespec="seconds"),
                    ", ".join(recipients),
                    message_id,
                ),
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    finally:
        ledger.close()
    detail = f"to {', '.join(recipients)}"
    if refused:
        detail += f" (refused by the server for {', '.join(sorted(refused))})"
    return MailOutcome("sent", site.site, period.key, detail)


@dataclass(frozen=True)
class ReportParts:
    subject: str
    text: str
    html: str
    xlsx: bytes
    csv: str
    basename: str


def report_parts(report: Report) -> ReportParts:
    return ReportParts(
        subject=f"Visits {report.period.label}: {report.site_name}",
        text=render_table(report),
        html=render_html(report),
        xlsx=render_xlsx(report),
        csv=render_csv(report),
        basename=f"visits-{report.site}-{report.period.key}",
    )


def build_message(
    smtp: SmtpSettings,
    recipients: list[str],
    parts: ReportParts,
    message_id: str,
    now: dt.datetime,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = parts.subject
    msg["Date"] = formatdate(now.timestamp(), localtime=False)
    msg["Message-ID"] = message_id
    msg.set_content(parts.text)
    msg.add_alternative(parts.html, subtype="html")
    msg.add_attachment(
        parts.xlsx, maintype=XLSX_TYPE[0], subtype=XLSX_TYPE[1], filename=f"{parts.basename}.xlsx"
    )
    msg.add_attachment(
        parts.csv.encode("utf-8"), maintype="text", subtype="csv", filename=f"{parts.basename}.csv"
    )
    return msg


def send(settings: SmtpSettings, msg: EmailMessage) -> dict[str, tuple[int, bytes]]:
    """Hand `msg` to the SMTP server; MailError when no recipient got it. Returns the
    recipients the server refused while taking it for the others."""
    if not settings.host:
        raise MailError("no SMTP server configured (FOOTFALL_SMTP__HOST)")
    try:
        refused = deliver(settings, msg)
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(f"every recipient was refused: {exc.recipients}") from None
    except smtplib.SMTPResponseException as exc:
        raise MailError(
            f"SMTP server {settings.host}:{settings.port} said {exc.smtp_code} "
            f"{_text(exc.smtp_error)}"
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"SMTP server {settings.host}:{settings.port}: {exc}") from None
    return dict(refused)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
