-- Raw request events, written only with FLEETPULSE_STORE_RAW_EVENTS=true.
-- Keyed by where each event came from, so an event written twice (a crash
-- between this insert and the window insert) collapses: query with FINAL for
-- exact counts. TTL from FLEETPULSE_RAW_EVENTS_TTL_DAYS on every migrate.
CREATE TABLE IF NOT EXISTS request_events
(
    timestamp        DateTime64(6, 'UTC'),
    request_id       String,
    trace_id         String,
    model            LowCardinality(String),
    node             LowCardinality(String),
    gpu              LowCardinality(String),
    operation        LowCardinality(String),
    duration         Float64,
    ttft             Nullable(Float64),
    tpot             Nullable(Float64),
    queue_time       Nullable(Float64),
    input_tokens     UInt32,
    output_tokens    UInt32,
    finish_reasons   Array(LowCardinality(String)),
    error_type       LowCardinality(String),
    source_topic     LowCardinality(String),
    source_partition UInt32,
    source_offset    UInt64,
    event_index      UInt32
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (source_topic, source_partition, source_offset, event_index)
TTL toDateTime(timestamp) + INTERVAL 3 DAY
SETTINGS non_replicated_deduplication_window = 10000;
