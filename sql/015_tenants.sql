-- Per-tenant usage (fleetpulse.tenant), exact, and the workers' heavy-hitter
-- summaries behind the top-K tenants on /metrics.
--
-- tenant_windows: partial rows, one per (source partition, window, tenant,
-- model) per worker batch, written like request_windows (one INSERT per batch,
-- its offsets in the rows and in the insert's dedup token; a replay skips the
-- offsets this table already holds: streams/windows/tenants.py). Rows merge by
-- summing; tenant_stats is the query surface. model is the join point for
-- costs: a price per model and per 1M tokens applies to each row.
-- TTL is set from FLEETPULSE_WINDOWS_TTL_DAYS on every `fleetpulse migrate`.
CREATE TABLE IF NOT EXISTS tenant_windows
(
    window_start     DateTime('UTC'),
    window_seconds   UInt32,
    tenant           String,
    model            LowCardinality(String),
    requests         UInt64,
    errors           UInt64,
    input_tokens     UInt64,
    output_tokens    UInt64,
    source_topic     LowCardinality(String),
    source_partition UInt32,
    offset_first     UInt64,
    offset_last      UInt64,
    max_event_time   Float64,
    inserted_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (window_start, tenant, model)
TTL window_start + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000;

-- Exact usage per (window, tenant, model): every partial row summed.
CREATE OR REPLACE VIEW tenant_stats AS
SELECT
    window_start, window_seconds, tenant, model,
    sum(requests) AS requests,
    sum(errors) AS errors,
    errors / requests AS error_rate,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens
FROM tenant_windows
GROUP BY window_start, window_seconds, tenant, model;

-- Each worker's Space-Saving summary of a closed window (streams/windows/spacesaving.py),
-- rewritten whole under a new version when late data changes it; readers take
-- each worker's newest version and merge them (streams/prometheus/tenants.py).
-- Only the newest closed windows are read: a week is kept (a replay of older
-- data exports no top K for its windows; tenant_windows has them all).
CREATE TABLE IF NOT EXISTS tenant_summaries
(
    window_start   DateTime('UTC'),
    window_seconds UInt32,
    worker         String,
    version        UInt64,
    capacity       UInt32,
    total          UInt64,
    tenant         String,
    count          UInt64,
    error          UInt64
)
ENGINE = MergeTree
ORDER BY (window_start, worker, version)
TTL window_start + INTERVAL 7 DAY;
