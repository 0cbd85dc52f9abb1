"""What ``/metrics`` serves.

- ``pipeline``: the worker's own metrics (messages, events, dead letters,
  lateness, lag, sink retries, GPU gauges, drift, webhook failures), on one
  registry (the watermark gauges come from streams/windows/fleet_watermark.py).
- ``requests``: request telemetry re-exported as Prometheus histograms and
  counters, exactly, with bounded label cardinality.
- ``tenants``: the top-K tenants of the newest closed window (Space-Saving
  summaries of every worker, kept in ClickHouse and merged), the rest as
  ``__other__``.
"""
