"""JSON webhooks: the generic format (the notification with its `Alert` payloads), and
the shapes Slack incoming webhooks and Teams (Workflows) webhooks accept. Their texts
(the generic `title`, Slack's and Teams' text and link titles) are text.py's, in the
notification's language; field names, events and ids stay as they are."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import urllib3

from ..rules import WebhookReceiver
from . import Refused, Retryable, text

_COLOUR = {"firing": "attention", "repeat": "attention", "resolved": "good"}
_SLACK_EMOJI = {
    "firing": ":rotating_light:",
    "repeat": ":rotating_light:",
    "resolved": ":white_check_mark:",
}


def payload(fmt: str, n: Mapping[str, Any]) -> dict[str, Any]:
    if fmt == "slack":
        lines = "\n".join(text.lines(n))
        link = "".join(f"\n<{url}|{title}>" for title, url in text.links(n))
        return {
            "text": f"{_SLACK_EMOJI[n['event']]} {text.subject(n)}",
            "blocks": [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"*{text.subject(n)}*\n{lines}{link}"},
                }
            ],
        }
    if fmt == "teams":
        body: list[dict[str, Any]] = [
            {
                "type": "TextBlock",
                "text": text.subject(n),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": _COLOUR[n["event"]],
            }
        ]
        body += [{"type": "TextBlock", "text": line, "wrap": True} for line in text.lines(n)]
        card: dict[str, Any] = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
        }
        if links := text.links(n):
            card["actions"] = [
                {"type": "Action.OpenUrl", "title": title, "url": url} for title, url in links
            ]
        return {
            "type": "message",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
            ],
        }
    return {
        "site": n["site"],
        "event": n["event"],
        "rule": n["rule"],
        "title": text.subject(n),
        "alerts": list(n["alerts"]),
        "link": n.get("link"),
        "board_url": n.get("board_url"),
    }


class WebhookSender:
    def __init__(self) -> None:
        self._http = urllib3.PoolManager(retries=False)

    def send(self, receiver: WebhookReceiver, n: Mapping[str, Any], key: str) -> None:
        try:
            url = receiver.resolved_url()
        except ValueError as exc:
            raise Retryable(str(exc)) from None  # the operator sets the variable, restarts
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "User-Agent": "footfall-alerts",
            **receiver.headers,
        }
        data = json.dumps(payload(receiver.format, n), ensure_ascii=False).encode()
        try:
            r = self._http.request(
                "POST",
                url,
                body=data,
                headers=headers,
                timeout=urllib3.Timeout(connect=5.0, read=receiver.timeout_s),
            )
        except urllib3.exceptions.HTTPError as exc:
            raise Retryable(f"webhook unreachable: {exc}") from None
        if 200 <= r.status < 300:
            return
        detail = r.data[:300].decode(errors="replace")
        if r.status >= 500 or r.status in (408, 425, 429):
            raise Retryable(f"webhook answered {r.status}: {detail}")
        raise Refused(f"webhook refused the message ({r.status}): {detail}")

    def close(self) -> None:
        self._http.clear()
