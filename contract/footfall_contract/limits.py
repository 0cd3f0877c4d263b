"""Limits of the wire contract (docs/spec.md §2), importable without pydantic so that the
edge agent's long-running process can use them."""

from __future__ import annotations

from typing import Final

MAX_PAYLOAD_BYTES: Final = 256 * 1024
"""The largest MQTT payload of the contract: the collector refuses bigger ones as
`too_large`, and the edge publisher never builds one."""
