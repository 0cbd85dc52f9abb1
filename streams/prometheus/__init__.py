"""What ``/metrics`` serves.

- ``pipeline``: the worker's own metrics (messages, events, dead letters,
  lateness, lag, sink retries, GPU gauges, drift), on one registry.
- ``requests``: request telemetry re-exported as Prometheus histograms and
  counters, exactly, with bounded label cardinality.
"""
