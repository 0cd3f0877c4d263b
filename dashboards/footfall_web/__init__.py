"""footfall-web: the built-in live board, the public crowding display and the JSON API.

Its own service (not part of the collector): public-facing, restartable on its own, and
it only reads (retained MQTT topics, InfluxDB queries), so it adds no load to the
collector's exactly-once path. See docs/dashboards.md."""
