-- Partial aggregates: one row per (source partition, window, model, node, late)
-- per worker batch. Rows from any worker, partition, retry or late arrival merge
-- by summing (sumMap for the bucket maps); the request_stats views are the
-- stable query surface over them.
--
-- Exactly-once bookkeeping lives in the same rows, so it is written in the same
-- atomic insert as the data: (source_topic, source_partition, offset_last) is how
-- far a partition has been written, max_event_time is that partition's event-time
-- high-water mark (the watermark is restored from it). No PARTITION BY: a batch
-- insert then makes one part, and a part appears whole or not at all.
-- TTL is set from FLEETPULSE_WINDOWS_TTL_DAYS on every `fleetpulse migrate`.
CREATE TABLE IF NOT EXISTS request_windows
(
    window_start     DateTime('UTC'),
    window_seconds   UInt32,
    model            LowCardinality(String),
    node             LowCardinality(String),
    late             UInt8,
    requests         UInt64,
    errors           UInt64,
    errors_by_type   Map(String, UInt64),
    input_tokens     UInt64,
    output_tokens    UInt64,
    latency_sum      Float64,
    latency_buckets  Map(Int16, UInt64),
    ttft_buckets     Map(Int16, UInt64),
    tpot_buckets     Map(Int16, UInt64),
    source_topic     LowCardinality(String),
    source_partition UInt32,
    offset_first     UInt64,
    offset_last      UInt64,
    max_event_time   Float64,
    inserted_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (window_start, model, node)
TTL window_start + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 10000;
