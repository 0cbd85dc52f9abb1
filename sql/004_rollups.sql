-- Rollups: 10 s windows -> 1 minute and 1 hour, maintained by materialized views
-- on every insert into request_windows. Each keeps the source partition and the
-- highest offset it has seen, so a worker that takes over a partition can check
-- that a rollup has every batch the base table has, and fill in what a crash
-- between the two writes left out (streams/windows/sink.py, catch_up_rollups).
-- TTLs from FLEETPULSE_ROLLUP_1M_TTL_DAYS / FLEETPULSE_ROLLUP_1H_TTL_DAYS.
CREATE TABLE IF NOT EXISTS request_windows_1m
(
    window_start     DateTime('UTC'),
    model            LowCardinality(String),
    node             LowCardinality(String),
    source_topic     LowCardinality(String),
    source_partition UInt32,
    requests         SimpleAggregateFunction(sum, UInt64),
    errors           SimpleAggregateFunction(sum, UInt64),
    late_requests    SimpleAggregateFunction(sum, UInt64),
    errors_by_type   SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    input_tokens     SimpleAggregateFunction(sum, UInt64),
    output_tokens    SimpleAggregateFunction(sum, UInt64),
    latency_sum      SimpleAggregateFunction(sum, Float64),
    latency_buckets  SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    ttft_buckets     SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    tpot_buckets     SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    offset_last      SimpleAggregateFunction(max, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (window_start, model, node, source_topic, source_partition)
TTL window_start + INTERVAL 180 DAY;

CREATE TABLE IF NOT EXISTS request_windows_1h AS request_windows_1m
ENGINE = AggregatingMergeTree
ORDER BY (window_start, model, node, source_topic, source_partition)
TTL window_start + INTERVAL 730 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS request_windows_1m_mv TO request_windows_1m AS
SELECT toStartOfMinute(window_start) AS window_start, model, node, source_topic, source_partition,
       sum(requests) AS requests, sum(errors) AS errors, sumIf(request_windows.requests, late = 1) AS late_requests,
       sumMap(errors_by_type) AS errors_by_type, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens, sum(latency_sum) AS latency_sum,
       sumMap(latency_buckets) AS latency_buckets, sumMap(ttft_buckets) AS ttft_buckets,
       sumMap(tpot_buckets) AS tpot_buckets, max(offset_last) AS offset_last
FROM request_windows
GROUP BY window_start, model, node, source_topic, source_partition;

CREATE MATERIALIZED VIEW IF NOT EXISTS request_windows_1h_mv TO request_windows_1h AS
SELECT toStartOfHour(window_start) AS window_start, model, node, source_topic, source_partition,
       sum(requests) AS requests, sum(errors) AS errors, sumIf(request_windows.requests, late = 1) AS late_requests,
       sumMap(errors_by_type) AS errors_by_type, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens, sum(latency_sum) AS latency_sum,
       sumMap(latency_buckets) AS latency_buckets, sumMap(ttft_buckets) AS ttft_buckets,
       sumMap(tpot_buckets) AS tpot_buckets, max(offset_last) AS offset_last
FROM request_windows
GROUP BY window_start, model, node, source_topic, source_partition;
