-- Raw request events, written only with FLEETPULSE_STORE_RAW_EVENTS=true.
-- The TTL is set from FLEETPULSE_RAW_EVENTS_TTL_DAYS on every `fleetpulse migrate`.
CREATE TABLE IF NOT EXISTS request_events
(
    timestamp       DateTime64(6, 'UTC'),
    request_id      String,
    trace_id        String,
    model           LowCardinality(String),
    node            LowCardinality(String),
    gpu             LowCardinality(String),
    operation       LowCardinality(String),
    duration        Float64,
    ttft            Nullable(Float64),
    tpot            Nullable(Float64),
    queue_time      Nullable(Float64),
    input_tokens    UInt32,
    output_tokens   UInt32,
    finish_reasons  Array(LowCardinality(String)),
    error_type      LowCardinality(String),
    source          String
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (model, node, timestamp)
TTL toDateTime(timestamp) + INTERVAL 3 DAY
SETTINGS non_replicated_deduplication_window = 100000;
