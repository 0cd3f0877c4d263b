"""The crowd simulator (`footfall-sim`): virtual edge agents running the real edge code for
every door of a site, fed by simulated visitors, or weeks of history straight into
InfluxDB. A development and demo tool: it needs both the edge and the collector extras,
which is why it is neither of them."""
