"""The wire contract shared by the edge agent, the collector and any third-party producer.

docs/spec.md §2: topic names, payload models and the timestamp format live here once, so that
the two sides cannot drift apart.
"""

__version__ = "0.1.0"
