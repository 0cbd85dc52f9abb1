-- Partial aggregates: one row per (window, model, node) per worker batch.
-- Rows from any worker, partition or retry merge by summing (sumMap for buckets);
-- request_stats is the stable query surface over them.
-- `source` names the Kafka offsets a row came from (topic:partition:first-last,...),
-- and the same string is the insert_deduplication_token, so a retried insert of
-- the same batch is dropped by ClickHouse instead of counted twice.
CREATE TABLE IF NOT EXISTS request_windows
(
    window_start    DateTime('UTC'),
    window_seconds  UInt32,
    model           LowCardinality(String),
    node            LowCardinality(String),
    requests        UInt64,
    errors          UInt64,
    errors_by_type  Map(String, UInt64),
    input_tokens    UInt64,
    output_tokens   UInt64,
    latency_sum     Float64,
    latency_buckets Map(Int16, UInt64),
    ttft_buckets    Map(Int16, UInt64),
    tpot_buckets    Map(Int16, UInt64),
    source          String,
    inserted_at     DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (model, node, window_start)
SETTINGS non_replicated_deduplication_window = 100000;
