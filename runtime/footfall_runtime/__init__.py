"""The adapters every program shares, beside the wire contract (footfall_contract): the
MQTT client with its reconnect and logging, settings from TOML and `FOOTFALL_` variables
with errors in an installer's words, HTTP bearer-token checks, connection and rate-limited
logging, and the service runtime (clock, threads, logging setup, run until a signal).

Only the standard library, paho-mqtt and (in `settings`, `configerrors`, `httpauth`)
pydantic: the edge imports `mqttclient`, `linklog` and `config` on a Pi without the
collector's dependencies."""
