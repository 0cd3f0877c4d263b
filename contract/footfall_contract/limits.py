"""Limits of the wire contract (docs/spec.md §2), importable without pydantic so that the
edge agent's long-running process can use them."""

from __future__ import annotations

from typing import Final

MAX_PAYLOAD_BYTES: Final = 256 * 1024
"""The largest MQTT payload of the contract: the collector refuses bigger ones as
`too_large`, and the edge publisher never builds one."""

MAX_PACKET_BYTES: Final = MAX_PAYLOAD_BYTES + 4096
"""The broker's `max_packet_size`: the largest payload plus room for topic and headers.
Services that read retained topics ask for no more (MQTT v5 Maximum Packet Size)."""
