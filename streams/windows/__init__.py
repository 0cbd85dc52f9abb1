"""Request messages to window rows, and the sink that makes them durable.

- ``batch``: one batch of messages to rows, dead letters and progress (pure).
- ``merge``: consecutive batches of one handover as one write (pure).
- ``columns``: decoded events as columns, strings as integer codes (pure).
- ``grid``: where windows of any size start (pure).
- ``aggregate``: the columns grouped per source partition, window, model, node,
  GPU and late flag (pure, numpy).
- ``sketch``: the mergeable log-bucket histograms (pure).
- ``tenants``: exact per-tenant partial rows of tenant_windows (pure, numpy).
- ``spacesaving``: mergeable Space-Saving heavy-hitter summaries (pure).
- ``rows`` and ``native``: window rows, and their Native-format block (pure).
- ``watermark``: per-partition lateness and the fleet watermark's logic (pure).
- ``fleet_watermark``: the fleet watermark read from ClickHouse, on /metrics.
- ``sink``: the ClickHouse sink; one atomic INSERT per batch, progress read back.
"""
