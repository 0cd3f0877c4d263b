"""Where alerts go: e-mail (SMTP), webhooks (JSON, Slack, Teams) and the retained MQTT
alert topic. Each raises `Retryable` when trying again later may work (the server is
away, overloaded, 4xx SMTP) and `Refused` when it cannot (the message itself is
refused): the outbox retries the first with back-off and records the second."""

from __future__ import annotations


class Retryable(Exception):
    pass


class Refused(Exception):
    pass
