-- GENERATED FILE: DO NOT EDIT. Regenerate with `fleetpulse schema > sql/schema.sql`.
--
-- The schema that `fleetpulse migrate` leaves in a new database: SHOW CREATE of
-- every object, functions first, then tables, materialized views and views, each
-- by name. To change the schema, add a migration in sql/ and regenerate this
-- file. TTLs that come from settings name the setting (in days) instead of a
-- number; SQL functions are global on a server, and ClickHouse writes a view
-- with the body of each function it calls in place of the call.

-- Functions

CREATE FUNCTION fleetpulse_bucket_quantile AS (buckets, q) -> if(empty(buckets), nan, fleetpulse_bucket_value(arraySort(mapKeys(buckets))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(q * arraySum(mapValues(buckets)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(buckets), mapKeys(buckets))))]));

CREATE FUNCTION fleetpulse_bucket_value AS i -> if(i = -32768, 0., (2 * pow(2, i / 32)) / (1 + pow(2, 1 / 32)));

CREATE FUNCTION fleetpulse_token_cost AS (input, output, cached, p_in, p_out, p_cached) -> (((((input - cached) * p_in) + (cached * p_cached)) + (output * p_out)) / 1000000);



-- Tables

CREATE TABLE alerts
(
    `timestamp` DateTime64(3, 'UTC'),
    `alert_name` LowCardinality(String),
    `status` LowCardinality(String),
    `severity` LowCardinality(String),
    `fingerprint` String,
    `labels` Map(String, String),
    `annotations` Map(String, String),
    `starts_at` DateTime64(3, 'UTC'),
    `ends_at` Nullable(DateTime64(3, 'UTC')),
    `value` Float64
)
ENGINE = MergeTree
ORDER BY (alert_name, fingerprint, timestamp)
TTL toDateTime(timestamp) + toIntervalDay(365)
SETTINGS index_granularity = 8192;

CREATE TABLE drift_baselines
(
    `model` LowCardinality(String),
    `feature` LowCardinality(String),
    `version` UInt32,
    `range_from` DateTime('UTC'),
    `range_to` DateTime('UTC'),
    `edges` Array(Int16),
    `categories` Array(String),
    `counts` Array(UInt64),
    `created_at` DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree
ORDER BY (model, feature, version)
SETTINGS index_granularity = 8192;

CREATE TABLE drift_windows
(
    `window_start` DateTime('UTC'),
    `model` LowCardinality(String),
    `feature` LowCardinality(String),
    `reference` LowCardinality(String),
    `psi` Float64,
    `ks` Float64,
    `js` Float64,
    `n_ref` UInt64,
    `n_cur` UInt64,
    `threshold` Float64,
    `decision` LowCardinality(String),
    `evaluated_at` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(evaluated_at)
ORDER BY (model, feature, window_start)
TTL window_start + toIntervalDay(180)
SETTINGS index_granularity = 8192;

CREATE TABLE fleetpulse_migrations
(
    `version` UInt32,
    `name` String,
    `applied_at` DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
ORDER BY version
SETTINGS index_granularity = 8192;

CREATE TABLE gpu_prices
(
    `kind` LowCardinality(String),
    `name` String,
    `hourly` Float64,
    `energy_per_kwh` Float64
)
ENGINE = MergeTree
ORDER BY (kind, name)
SETTINGS index_granularity = 8192;

CREATE TABLE gpu_samples
(
    `timestamp` DateTime64(3, 'UTC'),
    `node` LowCardinality(String),
    `gpu_uuid` LowCardinality(String),
    `gpu_index` UInt16,
    `gpu_name` LowCardinality(String),
    `utilization` Nullable(Float32),
    `memory_utilization` Nullable(Float32),
    `memory_used` Nullable(UInt64),
    `memory_total` Nullable(UInt64),
    `temperature` Nullable(Float32),
    `power_usage` Nullable(Float32),
    `power_limit` Nullable(Float32),
    `energy` Nullable(Float64),
    `clock_sm` Nullable(Float32),
    `clock_memory` Nullable(Float32),
    `throttle_reasons` Nullable(UInt64),
    `ecc_volatile` Nullable(UInt64),
    `pcie_tx` Nullable(Float64),
    `pcie_rx` Nullable(Float64),
    `xid` Nullable(UInt32)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (node, gpu_uuid, timestamp)
TTL toDateTime(timestamp) + toIntervalDay(FLEETPULSE_WINDOWS_TTL_DAYS)
SETTINGS index_granularity = 8192;

CREATE TABLE gpu_windows
(
    `window_start` DateTime('UTC'),
    `window_seconds` UInt32,
    `node` LowCardinality(String),
    `gpu_uuid` LowCardinality(String),
    `gpu_index` UInt16,
    `gpu_name` LowCardinality(String),
    `samples` UInt32,
    `utilization_min` Nullable(Float32),
    `utilization_avg` Nullable(Float64),
    `utilization_max` Nullable(Float32),
    `utilization_last` Nullable(Float32),
    `memory_utilization_avg` Nullable(Float64),
    `memory_used_max` Nullable(UInt64),
    `memory_used_last` Nullable(UInt64),
    `memory_total` Nullable(UInt64),
    `memory_used_ratio` Nullable(Float64),
    `temperature_min` Nullable(Float32),
    `temperature_avg` Nullable(Float64),
    `temperature_max` Nullable(Float32),
    `temperature_last` Nullable(Float32),
    `power_min` Nullable(Float32),
    `power_avg` Nullable(Float64),
    `power_max` Nullable(Float32),
    `power_last` Nullable(Float32),
    `power_limit` Nullable(Float32),
    `clock_sm_min` Nullable(Float32),
    `clock_sm_avg` Nullable(Float64),
    `clock_memory_avg` Nullable(Float64),
    `throttle_reasons_any` UInt64,
    `energy_joules` Nullable(Float64),
    `ecc_volatile_increase` Nullable(Float64),
    `pcie_tx_avg` Nullable(Float64),
    `pcie_rx_avg` Nullable(Float64),
    `xid_last` Nullable(UInt32),
    `computed_at` DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (window_start, node, gpu_uuid, window_seconds)
TTL window_start + toIntervalDay(FLEETPULSE_WINDOWS_TTL_DAYS)
SETTINGS index_granularity = 8192;

CREATE TABLE gpu_windows_1h
(
    `window_start` DateTime('UTC'),
    `window_seconds` UInt32,
    `node` LowCardinality(String),
    `gpu_uuid` LowCardinality(String),
    `gpu_index` UInt16,
    `gpu_name` LowCardinality(String),
    `samples` UInt32,
    `utilization_min` Nullable(Float32),
    `utilization_avg` Nullable(Float64),
    `utilization_max` Nullable(Float32),
    `utilization_last` Nullable(Float32),
    `memory_utilization_avg` Nullable(Float64),
    `memory_used_max` Nullable(UInt64),
    `memory_used_last` Nullable(UInt64),
    `memory_total` Nullable(UInt64),
    `memory_used_ratio` Nullable(Float64),
    `temperature_min` Nullable(Float32),
    `temperature_avg` Nullable(Float64),
    `temperature_max` Nullable(Float32),
    `temperature_last` Nullable(Float32),
    `power_min` Nullable(Float32),
    `power_avg` Nullable(Float64),
    `power_max` Nullable(Float32),
    `power_last` Nullable(Float32),
    `power_limit` Nullable(Float32),
    `clock_sm_min` Nullable(Float32),
    `clock_sm_avg` Nullable(Float64),
    `clock_memory_avg` Nullable(Float64),
    `throttle_reasons_any` UInt64,
    `energy_joules` Nullable(Float64),
    `ecc_volatile_increase` Nullable(Float64),
    `pcie_tx_avg` Nullable(Float64),
    `pcie_rx_avg` Nullable(Float64),
    `xid_last` Nullable(UInt32),
    `computed_at` DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (window_start, node, gpu_uuid, window_seconds)
TTL window_start + toIntervalDay(FLEETPULSE_ROLLUP_1H_TTL_DAYS)
SETTINGS index_granularity = 8192;

CREATE TABLE gpu_windows_1m
(
    `window_start` DateTime('UTC'),
    `window_seconds` UInt32,
    `node` LowCardinality(String),
    `gpu_uuid` LowCardinality(String),
    `gpu_index` UInt16,
    `gpu_name` LowCardinality(String),
    `samples` UInt32,
    `utilization_min` Nullable(Float32),
    `utilization_avg` Nullable(Float64),
    `utilization_max` Nullable(Float32),
    `utilization_last` Nullable(Float32),
    `memory_utilization_avg` Nullable(Float64),
    `memory_used_max` Nullable(UInt64),
    `memory_used_last` Nullable(UInt64),
    `memory_total` Nullable(UInt64),
    `memory_used_ratio` Nullable(Float64),
    `temperature_min` Nullable(Float32),
    `temperature_avg` Nullable(Float64),
    `temperature_max` Nullable(Float32),
    `temperature_last` Nullable(Float32),
    `power_min` Nullable(Float32),
    `power_avg` Nullable(Float64),
    `power_max` Nullable(Float32),
    `power_last` Nullable(Float32),
    `power_limit` Nullable(Float32),
    `clock_sm_min` Nullable(Float32),
    `clock_sm_avg` Nullable(Float64),
    `clock_memory_avg` Nullable(Float64),
    `throttle_reasons_any` UInt64,
    `energy_joules` Nullable(Float64),
    `ecc_volatile_increase` Nullable(Float64),
    `pcie_tx_avg` Nullable(Float64),
    `pcie_rx_avg` Nullable(Float64),
    `xid_last` Nullable(UInt32),
    `computed_at` DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (window_start, node, gpu_uuid, window_seconds)
TTL window_start + toIntervalDay(FLEETPULSE_ROLLUP_1M_TTL_DAYS)
SETTINGS index_granularity = 8192;

CREATE TABLE model_prices
(
    `model` String,
    `input_per_million` Float64,
    `output_per_million` Float64,
    `cached_input_per_million` Float64
)
ENGINE = MergeTree
ORDER BY model
SETTINGS index_granularity = 8192;

CREATE TABLE request_events
(
    `timestamp` DateTime64(6, 'UTC'),
    `request_id` String,
    `trace_id` String,
    `model` LowCardinality(String),
    `node` LowCardinality(String),
    `gpu` LowCardinality(String),
    `operation` LowCardinality(String),
    `duration` Float64,
    `ttft` Nullable(Float64),
    `tpot` Nullable(Float64),
    `queue_time` Nullable(Float64),
    `input_tokens` UInt32,
    `output_tokens` UInt32,
    `finish_reasons` Array(LowCardinality(String)),
    `error_type` LowCardinality(String),
    `source_topic` LowCardinality(String),
    `source_partition` UInt32,
    `source_offset` UInt64,
    `event_index` UInt32
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (source_topic, source_partition, source_offset, event_index)
TTL toDateTime(timestamp) + toIntervalDay(FLEETPULSE_RAW_EVENTS_TTL_DAYS)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;

CREATE TABLE request_windows
(
    `window_start` DateTime('UTC'),
    `window_seconds` UInt32,
    `model` LowCardinality(String),
    `node` LowCardinality(String),
    `late` UInt8,
    `requests` UInt64,
    `errors` UInt64,
    `errors_by_type` Map(String, UInt64),
    `input_tokens` UInt64,
    `output_tokens` UInt64,
    `latency_sum` Float64,
    `latency_buckets` Map(Int16, UInt64),
    `ttft_buckets` Map(Int16, UInt64),
    `tpot_buckets` Map(Int16, UInt64),
    `source_topic` LowCardinality(String),
    `source_partition` UInt32,
    `offset_first` UInt64,
    `offset_last` UInt64,
    `max_event_time` Float64,
    `inserted_at` DateTime64(3, 'UTC') DEFAULT now64(3),
    `input_tokens_buckets` Map(Int16, UInt64),
    `output_tokens_buckets` Map(Int16, UInt64),
    `queue_buckets` Map(Int16, UInt64),
    `operations` Map(String, UInt64),
    `finish_reasons` Map(String, UInt64),
    `outcomes` Map(String, UInt64),
    `gpu` LowCardinality(String),
    `analysed` UInt64,
    `refusals` UInt64,
    `empty_outputs` UInt64,
    `format_checked` UInt64,
    `format_failures` UInt64,
    `cache_read_tokens` UInt64,
    `repetition_buckets` Map(Int16, UInt64)
)
ENGINE = MergeTree
ORDER BY (window_start, model, node)
TTL window_start + toIntervalDay(FLEETPULSE_WINDOWS_TTL_DAYS)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;

CREATE TABLE request_windows_1h
(
    `window_start` DateTime('UTC'),
    `model` LowCardinality(String),
    `node` LowCardinality(String),
    `source_topic` LowCardinality(String),
    `source_partition` UInt32,
    `requests` SimpleAggregateFunction(sum, UInt64),
    `errors` SimpleAggregateFunction(sum, UInt64),
    `late_requests` SimpleAggregateFunction(sum, UInt64),
    `errors_by_type` SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    `input_tokens` SimpleAggregateFunction(sum, UInt64),
    `output_tokens` SimpleAggregateFunction(sum, UInt64),
    `latency_sum` SimpleAggregateFunction(sum, Float64),
    `latency_buckets` SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    `ttft_buckets` SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    `tpot_buckets` SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    `offset_last` SimpleAggregateFunction(max, UInt64),
    `queue_buckets` SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    `input_tokens_buckets` SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    `output_tokens_buckets` SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    `finish_reasons` SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    `outcomes` SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    `analysed` SimpleAggregateFunction(sum, UInt64),
    `refusals` SimpleAggregateFunction(sum, UInt64),
    `empty_outputs` SimpleAggregateFunction(sum, UInt64),
    `format_checked` SimpleAggregateFunction(sum, UInt64),
    `format_failures` SimpleAggregateFunction(sum, UInt64),
    `cache_read_tokens` SimpleAggregateFunction(sum, UInt64),
    `repetition_buckets` SimpleAggregateFunction(sumMap, Map(Int16, UInt64))
)
ENGINE = AggregatingMergeTree
ORDER BY (window_start, model, node, source_topic, source_partition)
TTL window_start + toIntervalDay(FLEETPULSE_ROLLUP_1H_TTL_DAYS)
SETTINGS index_granularity = 8192, min_bytes_for_wide_part = 268435456, non_replicated_deduplication_window = 10000;

CREATE TABLE request_windows_1m
(
    `window_start` DateTime('UTC'),
    `model` LowCardinality(String),
    `node` LowCardinality(String),
    `source_topic` LowCardinality(String),
    `source_partition` UInt32,
    `requests` SimpleAggregateFunction(sum, UInt64),
    `errors` SimpleAggregateFunction(sum, UInt64),
    `late_requests` SimpleAggregateFunction(sum, UInt64),
    `errors_by_type` SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    `input_tokens` SimpleAggregateFunction(sum, UInt64),
    `output_tokens` SimpleAggregateFunction(sum, UInt64),
    `latency_sum` SimpleAggregateFunction(sum, Float64),
    `latency_buckets` SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    `ttft_buckets` SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    `tpot_buckets` SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    `offset_last` SimpleAggregateFunction(max, UInt64),
    `queue_buckets` SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    `input_tokens_buckets` SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    `output_tokens_buckets` SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    `finish_reasons` SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    `outcomes` SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    `analysed` SimpleAggregateFunction(sum, UInt64),
    `refusals` SimpleAggregateFunction(sum, UInt64),
    `empty_outputs` SimpleAggregateFunction(sum, UInt64),
    `format_checked` SimpleAggregateFunction(sum, UInt64),
    `format_failures` SimpleAggregateFunction(sum, UInt64),
    `cache_read_tokens` SimpleAggregateFunction(sum, UInt64),
    `repetition_buckets` SimpleAggregateFunction(sumMap, Map(Int16, UInt64))
)
ENGINE = AggregatingMergeTree
ORDER BY (window_start, model, node, source_topic, source_partition)
TTL window_start + toIntervalDay(FLEETPULSE_ROLLUP_1M_TTL_DAYS)
SETTINGS index_granularity = 8192, min_bytes_for_wide_part = 268435456, non_replicated_deduplication_window = 10000;

CREATE TABLE silences
(
    `id` String,
    `matchers` Map(String, String),
    `starts_at` DateTime64(3, 'UTC'),
    `ends_at` DateTime64(3, 'UTC'),
    `comment` String,
    `updated_at` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id
SETTINGS index_granularity = 8192;

CREATE TABLE tenant_summaries
(
    `window_start` DateTime('UTC'),
    `window_seconds` UInt32,
    `worker` String,
    `version` UInt64,
    `capacity` UInt32,
    `total` UInt64,
    `tenant` String,
    `count` UInt64,
    `error` UInt64
)
ENGINE = MergeTree
ORDER BY (window_start, worker, version)
TTL window_start + toIntervalDay(7)
SETTINGS index_granularity = 8192;

CREATE TABLE tenant_windows
(
    `window_start` DateTime('UTC'),
    `window_seconds` UInt32,
    `tenant` String,
    `model` LowCardinality(String),
    `requests` UInt64,
    `errors` UInt64,
    `input_tokens` UInt64,
    `output_tokens` UInt64,
    `cache_read_tokens` UInt64,
    `source_topic` LowCardinality(String),
    `source_partition` UInt32,
    `offset_first` UInt64,
    `offset_last` UInt64,
    `max_event_time` Float64,
    `inserted_at` DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (window_start, tenant, model)
TTL window_start + toIntervalDay(FLEETPULSE_WINDOWS_TTL_DAYS)
SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192;



-- Materialized views

CREATE MATERIALIZED VIEW request_windows_1h_mv TO request_windows_1h
(
    `window_start` DateTime('UTC'),
    `model` LowCardinality(String),
    `node` LowCardinality(String),
    `source_topic` LowCardinality(String),
    `source_partition` UInt32,
    `requests` UInt64,
    `errors` UInt64,
    `late_requests` UInt64,
    `errors_by_type` Map(String, UInt64),
    `input_tokens` UInt64,
    `output_tokens` UInt64,
    `latency_sum` Float64,
    `latency_buckets` Map(Int16, UInt64),
    `ttft_buckets` Map(Int16, UInt64),
    `tpot_buckets` Map(Int16, UInt64),
    `offset_last` UInt64,
    `queue_buckets` Map(Int16, UInt64),
    `input_tokens_buckets` Map(Int16, UInt64),
    `output_tokens_buckets` Map(Int16, UInt64),
    `finish_reasons` Map(String, UInt64),
    `outcomes` Map(String, UInt64),
    `analysed` UInt64,
    `refusals` UInt64,
    `empty_outputs` UInt64,
    `format_checked` UInt64,
    `format_failures` UInt64,
    `cache_read_tokens` UInt64,
    `repetition_buckets` Map(Int16, UInt64)
)
AS SELECT
    toStartOfHour(window_start) AS window_start,
    model,
    node,
    source_topic,
    source_partition,
    requests,
    errors,
    if(late = 1, requests, 0) AS late_requests,
    errors_by_type,
    input_tokens,
    output_tokens,
    latency_sum,
    latency_buckets,
    ttft_buckets,
    tpot_buckets,
    offset_last,
    queue_buckets,
    input_tokens_buckets,
    output_tokens_buckets,
    finish_reasons,
    outcomes,
    analysed,
    refusals,
    empty_outputs,
    format_checked,
    format_failures,
    cache_read_tokens,
    repetition_buckets
FROM request_windows;

CREATE MATERIALIZED VIEW request_windows_1m_mv TO request_windows_1m
(
    `window_start` DateTime('UTC'),
    `model` LowCardinality(String),
    `node` LowCardinality(String),
    `source_topic` LowCardinality(String),
    `source_partition` UInt32,
    `requests` UInt64,
    `errors` UInt64,
    `late_requests` UInt64,
    `errors_by_type` Map(String, UInt64),
    `input_tokens` UInt64,
    `output_tokens` UInt64,
    `latency_sum` Float64,
    `latency_buckets` Map(Int16, UInt64),
    `ttft_buckets` Map(Int16, UInt64),
    `tpot_buckets` Map(Int16, UInt64),
    `offset_last` UInt64,
    `queue_buckets` Map(Int16, UInt64),
    `input_tokens_buckets` Map(Int16, UInt64),
    `output_tokens_buckets` Map(Int16, UInt64),
    `finish_reasons` Map(String, UInt64),
    `outcomes` Map(String, UInt64),
    `analysed` UInt64,
    `refusals` UInt64,
    `empty_outputs` UInt64,
    `format_checked` UInt64,
    `format_failures` UInt64,
    `cache_read_tokens` UInt64,
    `repetition_buckets` Map(Int16, UInt64)
)
AS SELECT
    toStartOfMinute(window_start) AS window_start,
    model,
    node,
    source_topic,
    source_partition,
    requests,
    errors,
    if(late = 1, requests, 0) AS late_requests,
    errors_by_type,
    input_tokens,
    output_tokens,
    latency_sum,
    latency_buckets,
    ttft_buckets,
    tpot_buckets,
    offset_last,
    queue_buckets,
    input_tokens_buckets,
    output_tokens_buckets,
    finish_reasons,
    outcomes,
    analysed,
    refusals,
    empty_outputs,
    format_checked,
    format_failures,
    cache_read_tokens,
    repetition_buckets
FROM request_windows;



-- Views

CREATE VIEW drift_stats
(
    `window` DateTime('UTC'),
    `model` LowCardinality(String),
    `feature` LowCardinality(String),
    `psi` Float64,
    `ks` Float64,
    `js` Float64,
    `n_ref` UInt64,
    `n_cur` UInt64,
    `decision` LowCardinality(String),
    `threshold` Float64,
    `reference` LowCardinality(String)
)
AS SELECT
    window_start AS window,
    model,
    feature,
    psi,
    ks,
    js,
    n_ref,
    n_cur,
    decision,
    threshold,
    reference
FROM drift_windows
FINAL;

CREATE VIEW gpu_cost
(
    `grain` String,
    `window_start` DateTime('UTC'),
    `window_seconds` UInt32,
    `node` LowCardinality(String),
    `gpu_uuid` LowCardinality(String),
    `gpu_index` UInt16,
    `gpu_name` LowCardinality(String),
    `gpu_hours` Float64,
    `energy_kwh` Float64,
    `hourly_price` Float64,
    `energy_price` Float64,
    `time_cost` Float64,
    `energy_cost` Float64,
    `gpu_cost` Float64
)
AS SELECT
    g.grain AS grain,
    g.window_start AS window_start,
    g.window_seconds AS window_seconds,
    g.node AS node,
    g.gpu_uuid AS gpu_uuid,
    g.gpu_index AS gpu_index,
    g.gpu_name AS gpu_name,
    g.window_seconds / 3600 AS gpu_hours,
    ifNull(g.energy_joules, 0) / 3600000 AS energy_kwh,
    if(n.name != '', n.hourly, t.hourly) AS hourly_price,
    if(n.name != '', n.energy_per_kwh, t.energy_per_kwh) AS energy_price,
    gpu_hours * hourly_price AS time_cost,
    energy_kwh * energy_price AS energy_cost,
    time_cost + energy_cost AS gpu_cost
FROM
(
    SELECT
        'base' AS grain,
        window_start,
        window_seconds,
        node,
        gpu_uuid,
        gpu_index,
        gpu_name,
        energy_joules
    FROM gpu_windows
    FINAL
    UNION ALL
    SELECT
        '1m' AS grain,
        window_start,
        window_seconds,
        node,
        gpu_uuid,
        gpu_index,
        gpu_name,
        energy_joules
    FROM gpu_windows_1m
    FINAL
    UNION ALL
    SELECT
        '1h' AS grain,
        window_start,
        window_seconds,
        node,
        gpu_uuid,
        gpu_index,
        gpu_name,
        energy_joules
    FROM gpu_windows_1h
    FINAL
) AS g
LEFT JOIN
(
    SELECT
        name,
        hourly,
        energy_per_kwh
    FROM gpu_prices
    WHERE kind = 'node'
) AS n ON g.node = n.name
LEFT JOIN
(
    SELECT
        name,
        hourly,
        energy_per_kwh
    FROM gpu_prices
    WHERE kind = 'gpu'
) AS t ON g.gpu_name = t.name
WHERE (n.name != '') OR (t.name != '');

CREATE VIEW gpu_efficiency
(
    `window_start` DateTime('UTC'),
    `node` LowCardinality(String),
    `gpu` LowCardinality(String),
    `gpu_uuid` LowCardinality(String),
    `requests` UInt64,
    `output_tokens` UInt64,
    `mean_latency` Float64,
    `utilization_avg` Nullable(Float64),
    `power_avg` Nullable(Float64),
    `energy_joules` Nullable(Float64),
    `tokens_per_gpu_second` Float64,
    `requests_per_kwh` Nullable(Float64)
)
AS SELECT
    r.window_start AS window_start,
    r.node AS node,
    r.gpu AS gpu,
    g.gpu_uuid AS gpu_uuid,
    r.requests AS requests,
    r.output_tokens AS output_tokens,
    r.mean_latency AS mean_latency,
    g.utilization_avg AS utilization_avg,
    g.power_avg AS power_avg,
    g.energy_joules AS energy_joules,
    r.output_tokens / r.window_seconds AS tokens_per_gpu_second,
    if(g.energy_joules > 0, r.requests / (g.energy_joules / 3600000), NULL) AS requests_per_kwh
FROM
(
    SELECT
        window_start,
        window_seconds,
        node,
        gpu,
        sum(request_windows.requests) AS requests,
        sum(request_windows.output_tokens) AS output_tokens,
        sum(latency_sum) / sum(request_windows.requests) AS mean_latency
    FROM request_windows
    WHERE gpu != ''
    GROUP BY
        window_start,
        window_seconds,
        node,
        gpu
) AS r
INNER JOIN
(
    SELECT
        window_start,
        window_seconds,
        node,
        toString(gpu_index) AS gpu_index,
        gpu_uuid,
        utilization_avg,
        power_avg,
        energy_joules
    FROM gpu_windows
    FINAL
) AS g ON ((r.window_start = g.window_start) AND (r.window_seconds = g.window_seconds) AND (r.node = g.node) AND (r.gpu = g.gpu_index)) OR ((r.window_start = g.window_start) AND (r.window_seconds = g.window_seconds) AND (r.node = g.node) AND (r.gpu = g.gpu_uuid));

CREATE VIEW gpu_request_cost
(
    `window_start` DateTime('UTC'),
    `node` LowCardinality(String),
    `gpu` LowCardinality(String),
    `gpu_uuid` LowCardinality(String),
    `requests` UInt64,
    `output_tokens` UInt64,
    `gpu_cost` Float64,
    `gpu_cost_per_request` Float64,
    `output_tokens_per_dollar` Float64
)
AS SELECT
    e.window_start AS window_start,
    e.node AS node,
    e.gpu AS gpu,
    e.gpu_uuid AS gpu_uuid,
    e.requests AS requests,
    e.output_tokens AS output_tokens,
    c.gpu_cost AS gpu_cost,
    c.gpu_cost / e.requests AS gpu_cost_per_request,
    e.output_tokens / c.gpu_cost AS output_tokens_per_dollar
FROM gpu_efficiency AS e
INNER JOIN
(
    SELECT
        window_start,
        node,
        gpu_uuid,
        gpu_cost
    FROM gpu_cost
    WHERE grain = 'base'
) AS c ON (e.window_start = c.window_start) AND (e.node = c.node) AND (e.gpu_uuid = c.gpu_uuid);

CREATE VIEW gpu_windows_for
AS SELECT
    window_start,
    window_seconds,
    node,
    gpu_uuid,
    gpu_index,
    gpu_name,
    samples,
    utilization_avg,
    utilization_max,
    memory_used_max,
    memory_total,
    memory_used_ratio,
    temperature_max,
    power_avg,
    power_max,
    power_limit,
    clock_sm_avg,
    throttle_reasons_any,
    energy_joules,
    ecc_volatile_increase,
    xid_last
FROM gpu_windows
FINAL
WHERE ({interval_s:UInt32} % 60) != 0
UNION ALL
SELECT
    window_start,
    window_seconds,
    node,
    gpu_uuid,
    gpu_index,
    gpu_name,
    samples,
    utilization_avg,
    utilization_max,
    memory_used_max,
    memory_total,
    memory_used_ratio,
    temperature_max,
    power_avg,
    power_max,
    power_limit,
    clock_sm_avg,
    throttle_reasons_any,
    energy_joules,
    ecc_volatile_increase,
    xid_last
FROM gpu_windows_1m
FINAL
WHERE (({interval_s:UInt32} % 60) = 0) AND (({interval_s:UInt32} % 3600) != 0)
UNION ALL
SELECT
    window_start,
    window_seconds,
    node,
    gpu_uuid,
    gpu_index,
    gpu_name,
    samples,
    utilization_avg,
    utilization_max,
    memory_used_max,
    memory_total,
    memory_used_ratio,
    temperature_max,
    power_avg,
    power_max,
    power_limit,
    clock_sm_avg,
    throttle_reasons_any,
    energy_joules,
    ecc_volatile_increase,
    xid_last
FROM gpu_windows_1h
FINAL
WHERE ({interval_s:UInt32} % 3600) = 0;

CREATE VIEW request_cost
(
    `window_start` DateTime('UTC'),
    `window_seconds` UInt32,
    `model` LowCardinality(String),
    `requests` UInt64,
    `input_tokens` UInt64,
    `output_tokens` UInt64,
    `cache_read_tokens` UInt64,
    `cache_hit_rate` Float64,
    `cost` Float64,
    `cost_per_request` Float64,
    `cost_per_million_tokens` Float64,
    `tokens_per_dollar` Float64,
    `cache_savings` Float64
)
AS SELECT
    s.window_start AS window_start,
    s.window_seconds AS window_seconds,
    s.model AS model,
    s.requests AS requests,
    s.input_tokens AS input_tokens,
    s.output_tokens AS output_tokens,
    s.cache_read_tokens AS cache_read_tokens,
    s.cache_hit_rate AS cache_hit_rate,
    ((((s.input_tokens - s.cache_read_tokens) * p.input_per_million) + (s.cache_read_tokens * p.cached_input_per_million)) + (s.output_tokens * p.output_per_million)) / 1000000 AS cost,
    cost / s.requests AS cost_per_request,
    (cost / (s.input_tokens + s.output_tokens)) * 1000000 AS cost_per_million_tokens,
    (s.input_tokens + s.output_tokens) / cost AS tokens_per_dollar,
    (s.cache_read_tokens * (p.input_per_million - p.cached_input_per_million)) / 1000000 AS cache_savings
FROM request_stats_model AS s
INNER JOIN model_prices AS p ON s.model = p.model;

CREATE VIEW request_cost_rollup
(
    `grain` String,
    `window_start` DateTime('UTC'),
    `model` LowCardinality(String),
    `requests` UInt64,
    `input_tokens` UInt64,
    `output_tokens` UInt64,
    `cache_read_tokens` UInt64,
    `cache_hit_rate` Float64,
    `cost` Float64,
    `cost_per_request` Float64,
    `cost_per_million_tokens` Float64,
    `tokens_per_dollar` Float64,
    `cache_savings` Float64
)
AS SELECT
    s.grain AS grain,
    s.window_start AS window_start,
    s.model AS model,
    s.requests AS requests,
    s.input_tokens AS input_tokens,
    s.output_tokens AS output_tokens,
    s.cache_read_tokens AS cache_read_tokens,
    s.cache_read_tokens / s.input_tokens AS cache_hit_rate,
    ((((s.input_tokens - s.cache_read_tokens) * p.input_per_million) + (s.cache_read_tokens * p.cached_input_per_million)) + (s.output_tokens * p.output_per_million)) / 1000000 AS cost,
    cost / s.requests AS cost_per_request,
    (cost / (s.input_tokens + s.output_tokens)) * 1000000 AS cost_per_million_tokens,
    (s.input_tokens + s.output_tokens) / cost AS tokens_per_dollar,
    (s.cache_read_tokens * (p.input_per_million - p.cached_input_per_million)) / 1000000 AS cache_savings
FROM
(
    SELECT
        grain,
        window_start,
        model,
        sum(requests) AS requests,
        sum(input_tokens) AS input_tokens,
        sum(output_tokens) AS output_tokens,
        sum(cache_read_tokens) AS cache_read_tokens
    FROM request_stats_rollup
    GROUP BY
        grain,
        window_start,
        model
) AS s
INNER JOIN model_prices AS p ON s.model = p.model;

CREATE VIEW request_quantile
AS SELECT
    window_start,
    model,
    node,
    if(empty(sumMap(latency_buckets)), nan, if((arraySort(mapKeys(sumMap(latency_buckets)))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round({q:Float64} * arraySum(mapValues(sumMap(latency_buckets))), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(sumMap(latency_buckets)), mapKeys(sumMap(latency_buckets)))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(sumMap(latency_buckets)))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round({q:Float64} * arraySum(mapValues(sumMap(latency_buckets))), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(sumMap(latency_buckets)), mapKeys(sumMap(latency_buckets)))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS latency,
    if(empty(sumMap(ttft_buckets)), nan, if((arraySort(mapKeys(sumMap(ttft_buckets)))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round({q:Float64} * arraySum(mapValues(sumMap(ttft_buckets))), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(sumMap(ttft_buckets)), mapKeys(sumMap(ttft_buckets)))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(sumMap(ttft_buckets)))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round({q:Float64} * arraySum(mapValues(sumMap(ttft_buckets))), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(sumMap(ttft_buckets)), mapKeys(sumMap(ttft_buckets)))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS ttft,
    if(empty(sumMap(tpot_buckets)), nan, if((arraySort(mapKeys(sumMap(tpot_buckets)))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round({q:Float64} * arraySum(mapValues(sumMap(tpot_buckets))), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(sumMap(tpot_buckets)), mapKeys(sumMap(tpot_buckets)))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(sumMap(tpot_buckets)))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round({q:Float64} * arraySum(mapValues(sumMap(tpot_buckets))), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(sumMap(tpot_buckets)), mapKeys(sumMap(tpot_buckets)))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS tpot
FROM request_windows
GROUP BY
    window_start,
    model,
    node;

CREATE VIEW request_stats
(
    `window_start` DateTime('UTC'),
    `window_seconds` UInt32,
    `model` LowCardinality(String),
    `node` LowCardinality(String),
    `requests` UInt64,
    `errors` UInt64,
    `error_rate` Float64,
    `late_requests` UInt64,
    `input_tokens` UInt64,
    `output_tokens` UInt64,
    `requests_per_s` Float64,
    `tokens_per_s` Float64,
    `input_tokens_per_s` Float64,
    `latency_map` Map(Int16, UInt64),
    `ttft_map` Map(Int16, UInt64),
    `tpot_map` Map(Int16, UInt64),
    `latency_p50` Float64,
    `latency_p90` Float64,
    `latency_p95` Float64,
    `latency_p99` Float64,
    `latency_p999` Float64,
    `ttft_p50` Float64,
    `ttft_p90` Float64,
    `ttft_p95` Float64,
    `ttft_p99` Float64,
    `ttft_p999` Float64,
    `tpot_p50` Float64,
    `tpot_p90` Float64,
    `tpot_p95` Float64,
    `tpot_p99` Float64,
    `tpot_p999` Float64,
    `queue_map` Map(Int16, UInt64),
    `queue_p50` Float64,
    `queue_p90` Float64,
    `queue_p95` Float64,
    `queue_p99` Float64,
    `queue_p999` Float64,
    `analysed` UInt64,
    `refusal_rate` Float64,
    `empty_rate` Float64,
    `finish_map` Map(String, UInt64),
    `truncation_rate` Float64,
    `content_filter_rate` Float64,
    `format_checked` UInt64,
    `format_failure_rate` Float64,
    `repetition_map` Map(Int16, UInt64),
    `repetition_p50` Float64,
    `repetition_p90` Float64,
    `repetition_p99` Float64,
    `cache_read_tokens` UInt64,
    `cache_hit_rate` Float64
)
AS SELECT *
FROM request_stats_of(level = 'node');

CREATE VIEW request_stats_model
(
    `window_start` DateTime('UTC'),
    `window_seconds` UInt32,
    `model` LowCardinality(String),
    `requests` UInt64,
    `errors` UInt64,
    `error_rate` Float64,
    `late_requests` UInt64,
    `input_tokens` UInt64,
    `output_tokens` UInt64,
    `requests_per_s` Float64,
    `tokens_per_s` Float64,
    `input_tokens_per_s` Float64,
    `latency_map` Map(Int16, UInt64),
    `ttft_map` Map(Int16, UInt64),
    `tpot_map` Map(Int16, UInt64),
    `latency_p50` Float64,
    `latency_p90` Float64,
    `latency_p95` Float64,
    `latency_p99` Float64,
    `latency_p999` Float64,
    `ttft_p50` Float64,
    `ttft_p90` Float64,
    `ttft_p95` Float64,
    `ttft_p99` Float64,
    `ttft_p999` Float64,
    `tpot_p50` Float64,
    `tpot_p90` Float64,
    `tpot_p95` Float64,
    `tpot_p99` Float64,
    `tpot_p999` Float64,
    `queue_map` Map(Int16, UInt64),
    `queue_p50` Float64,
    `queue_p90` Float64,
    `queue_p95` Float64,
    `queue_p99` Float64,
    `queue_p999` Float64,
    `analysed` UInt64,
    `refusal_rate` Float64,
    `empty_rate` Float64,
    `finish_map` Map(String, UInt64),
    `truncation_rate` Float64,
    `content_filter_rate` Float64,
    `format_checked` UInt64,
    `format_failure_rate` Float64,
    `repetition_map` Map(Int16, UInt64),
    `repetition_p50` Float64,
    `repetition_p90` Float64,
    `repetition_p99` Float64,
    `cache_read_tokens` UInt64,
    `cache_hit_rate` Float64
)
AS SELECT * EXCEPT node
FROM request_stats_of(level = 'model');

CREATE VIEW request_stats_of
AS SELECT
    window_start,
    window_seconds,
    model,
    node,
    sum(requests) AS requests,
    sum(errors) AS errors,
    errors / requests AS error_rate,
    sum(late_requests) AS late_requests,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    requests / window_seconds AS requests_per_s,
    output_tokens / window_seconds AS tokens_per_s,
    input_tokens / window_seconds AS input_tokens_per_s,
    sumMap(latency_buckets) AS latency_map,
    sumMap(ttft_buckets) AS ttft_map,
    sumMap(tpot_buckets) AS tpot_map,
    if(empty(latency_map), nan, if((arraySort(mapKeys(latency_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.5 * arraySum(mapValues(latency_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(latency_map), mapKeys(latency_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(latency_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.5 * arraySum(mapValues(latency_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(latency_map), mapKeys(latency_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS latency_p50,
    if(empty(latency_map), nan, if((arraySort(mapKeys(latency_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.9 * arraySum(mapValues(latency_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(latency_map), mapKeys(latency_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(latency_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.9 * arraySum(mapValues(latency_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(latency_map), mapKeys(latency_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS latency_p90,
    if(empty(latency_map), nan, if((arraySort(mapKeys(latency_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.95 * arraySum(mapValues(latency_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(latency_map), mapKeys(latency_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(latency_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.95 * arraySum(mapValues(latency_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(latency_map), mapKeys(latency_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS latency_p95,
    if(empty(latency_map), nan, if((arraySort(mapKeys(latency_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.99 * arraySum(mapValues(latency_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(latency_map), mapKeys(latency_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(latency_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.99 * arraySum(mapValues(latency_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(latency_map), mapKeys(latency_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS latency_p99,
    if(empty(latency_map), nan, if((arraySort(mapKeys(latency_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.999 * arraySum(mapValues(latency_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(latency_map), mapKeys(latency_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(latency_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.999 * arraySum(mapValues(latency_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(latency_map), mapKeys(latency_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS latency_p999,
    if(empty(ttft_map), nan, if((arraySort(mapKeys(ttft_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.5 * arraySum(mapValues(ttft_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(ttft_map), mapKeys(ttft_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(ttft_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.5 * arraySum(mapValues(ttft_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(ttft_map), mapKeys(ttft_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS ttft_p50,
    if(empty(ttft_map), nan, if((arraySort(mapKeys(ttft_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.9 * arraySum(mapValues(ttft_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(ttft_map), mapKeys(ttft_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(ttft_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.9 * arraySum(mapValues(ttft_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(ttft_map), mapKeys(ttft_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS ttft_p90,
    if(empty(ttft_map), nan, if((arraySort(mapKeys(ttft_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.95 * arraySum(mapValues(ttft_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(ttft_map), mapKeys(ttft_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(ttft_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.95 * arraySum(mapValues(ttft_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(ttft_map), mapKeys(ttft_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS ttft_p95,
    if(empty(ttft_map), nan, if((arraySort(mapKeys(ttft_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.99 * arraySum(mapValues(ttft_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(ttft_map), mapKeys(ttft_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(ttft_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.99 * arraySum(mapValues(ttft_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(ttft_map), mapKeys(ttft_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS ttft_p99,
    if(empty(ttft_map), nan, if((arraySort(mapKeys(ttft_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.999 * arraySum(mapValues(ttft_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(ttft_map), mapKeys(ttft_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(ttft_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.999 * arraySum(mapValues(ttft_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(ttft_map), mapKeys(ttft_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS ttft_p999,
    if(empty(tpot_map), nan, if((arraySort(mapKeys(tpot_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.5 * arraySum(mapValues(tpot_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(tpot_map), mapKeys(tpot_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(tpot_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.5 * arraySum(mapValues(tpot_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(tpot_map), mapKeys(tpot_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS tpot_p50,
    if(empty(tpot_map), nan, if((arraySort(mapKeys(tpot_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.9 * arraySum(mapValues(tpot_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(tpot_map), mapKeys(tpot_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(tpot_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.9 * arraySum(mapValues(tpot_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(tpot_map), mapKeys(tpot_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS tpot_p90,
    if(empty(tpot_map), nan, if((arraySort(mapKeys(tpot_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.95 * arraySum(mapValues(tpot_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(tpot_map), mapKeys(tpot_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(tpot_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.95 * arraySum(mapValues(tpot_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(tpot_map), mapKeys(tpot_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS tpot_p95,
    if(empty(tpot_map), nan, if((arraySort(mapKeys(tpot_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.99 * arraySum(mapValues(tpot_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(tpot_map), mapKeys(tpot_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(tpot_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.99 * arraySum(mapValues(tpot_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(tpot_map), mapKeys(tpot_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS tpot_p99,
    if(empty(tpot_map), nan, if((arraySort(mapKeys(tpot_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.999 * arraySum(mapValues(tpot_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(tpot_map), mapKeys(tpot_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(tpot_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.999 * arraySum(mapValues(tpot_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(tpot_map), mapKeys(tpot_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS tpot_p999,
    sumMap(queue_buckets) AS queue_map,
    if(empty(queue_map), nan, if((arraySort(mapKeys(queue_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.5 * arraySum(mapValues(queue_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(queue_map), mapKeys(queue_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(queue_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.5 * arraySum(mapValues(queue_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(queue_map), mapKeys(queue_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS queue_p50,
    if(empty(queue_map), nan, if((arraySort(mapKeys(queue_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.9 * arraySum(mapValues(queue_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(queue_map), mapKeys(queue_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(queue_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.9 * arraySum(mapValues(queue_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(queue_map), mapKeys(queue_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS queue_p90,
    if(empty(queue_map), nan, if((arraySort(mapKeys(queue_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.95 * arraySum(mapValues(queue_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(queue_map), mapKeys(queue_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(queue_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.95 * arraySum(mapValues(queue_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(queue_map), mapKeys(queue_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS queue_p95,
    if(empty(queue_map), nan, if((arraySort(mapKeys(queue_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.99 * arraySum(mapValues(queue_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(queue_map), mapKeys(queue_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(queue_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.99 * arraySum(mapValues(queue_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(queue_map), mapKeys(queue_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS queue_p99,
    if(empty(queue_map), nan, if((arraySort(mapKeys(queue_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.999 * arraySum(mapValues(queue_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(queue_map), mapKeys(queue_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(queue_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.999 * arraySum(mapValues(queue_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(queue_map), mapKeys(queue_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS queue_p999,
    sum(analysed) AS analysed,
    sum(refusals) / analysed AS refusal_rate,
    sum(empty_outputs) / analysed AS empty_rate,
    sumMap(finish_reasons) AS finish_map,
    (finish_map['length']) / requests AS truncation_rate,
    (finish_map['content_filter']) / requests AS content_filter_rate,
    sum(format_checked) AS format_checked,
    sum(format_failures) / format_checked AS format_failure_rate,
    sumMap(repetition_buckets) AS repetition_map,
    if(empty(repetition_map), nan, if((arraySort(mapKeys(repetition_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.5 * arraySum(mapValues(repetition_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(repetition_map), mapKeys(repetition_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(repetition_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.5 * arraySum(mapValues(repetition_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(repetition_map), mapKeys(repetition_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS repetition_p50,
    if(empty(repetition_map), nan, if((arraySort(mapKeys(repetition_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.9 * arraySum(mapValues(repetition_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(repetition_map), mapKeys(repetition_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(repetition_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.9 * arraySum(mapValues(repetition_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(repetition_map), mapKeys(repetition_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS repetition_p90,
    if(empty(repetition_map), nan, if((arraySort(mapKeys(repetition_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.99 * arraySum(mapValues(repetition_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(repetition_map), mapKeys(repetition_map))))]) = -32768, 0., (2 * pow(2, (arraySort(mapKeys(repetition_map))[arrayFirstIndex(c -> (c >= greatest(1, ceil(round(0.99 * arraySum(mapValues(repetition_map)), 6)))), arrayCumSum(arraySort((v, k) -> k, mapValues(repetition_map), mapKeys(repetition_map))))]) / 32)) / (1 + pow(2, 1 / 32)))) AS repetition_p99,
    sum(cache_read_tokens) AS cache_read_tokens,
    cache_read_tokens / input_tokens AS cache_hit_rate
FROM
(
    SELECT
        window_start,
        window_seconds,
        model,
        node,
        requests,
        errors,
        if(late = 1, requests, 0) AS late_requests,
        input_tokens,
        output_tokens,
        latency_buckets,
        ttft_buckets,
        tpot_buckets,
        queue_buckets,
        finish_reasons,
        analysed,
        refusals,
        empty_outputs,
        format_checked,
        format_failures,
        cache_read_tokens,
        repetition_buckets
    FROM request_windows
    WHERE {level:String} = 'node'
    UNION ALL
    SELECT
        window_start,
        window_seconds,
        model,
        toLowCardinality('') AS node,
        requests,
        errors,
        if(late = 1, requests, 0) AS late_requests,
        input_tokens,
        output_tokens,
        latency_buckets,
        ttft_buckets,
        tpot_buckets,
        queue_buckets,
        finish_reasons,
        analysed,
        refusals,
        empty_outputs,
        format_checked,
        format_failures,
        cache_read_tokens,
        repetition_buckets
    FROM request_windows
    WHERE {level:String} = 'model'
    UNION ALL
    SELECT
        window_start,
        toUInt32(60) AS window_seconds,
        model,
        node,
        requests,
        errors,
        late_requests,
        input_tokens,
        output_tokens,
        latency_buckets,
        ttft_buckets,
        tpot_buckets,
        queue_buckets,
        finish_reasons,
        analysed,
        refusals,
        empty_outputs,
        format_checked,
        format_failures,
        cache_read_tokens,
        repetition_buckets
    FROM request_windows_1m
    WHERE {level:String} = '1m'
    UNION ALL
    SELECT
        window_start,
        toUInt32(3600) AS window_seconds,
        model,
        node,
        requests,
        errors,
        late_requests,
        input_tokens,
        output_tokens,
        latency_buckets,
        ttft_buckets,
        tpot_buckets,
        queue_buckets,
        finish_reasons,
        analysed,
        refusals,
        empty_outputs,
        format_checked,
        format_failures,
        cache_read_tokens,
        repetition_buckets
    FROM request_windows_1h
    WHERE {level:String} = '1h'
)
GROUP BY
    window_start,
    window_seconds,
    model,
    node;

CREATE VIEW request_stats_rollup
(
    `grain` String,
    `window_start` DateTime('UTC'),
    `window_seconds` UInt16,
    `model` LowCardinality(String),
    `node` LowCardinality(String),
    `requests` UInt64,
    `errors` UInt64,
    `error_rate` Float64,
    `late_requests` UInt64,
    `input_tokens` UInt64,
    `output_tokens` UInt64,
    `requests_per_s` Float64,
    `tokens_per_s` Float64,
    `input_tokens_per_s` Float64,
    `latency_map` Map(Int16, UInt64),
    `ttft_map` Map(Int16, UInt64),
    `tpot_map` Map(Int16, UInt64),
    `latency_p50` Float64,
    `latency_p90` Float64,
    `latency_p95` Float64,
    `latency_p99` Float64,
    `latency_p999` Float64,
    `ttft_p50` Float64,
    `ttft_p90` Float64,
    `ttft_p95` Float64,
    `ttft_p99` Float64,
    `ttft_p999` Float64,
    `tpot_p50` Float64,
    `tpot_p90` Float64,
    `tpot_p95` Float64,
    `tpot_p99` Float64,
    `tpot_p999` Float64,
    `queue_map` Map(Int16, UInt64),
    `queue_p50` Float64,
    `queue_p90` Float64,
    `queue_p95` Float64,
    `queue_p99` Float64,
    `queue_p999` Float64,
    `analysed` UInt64,
    `refusal_rate` Float64,
    `empty_rate` Float64,
    `finish_map` Map(String, UInt64),
    `truncation_rate` Float64,
    `content_filter_rate` Float64,
    `format_checked` UInt64,
    `format_failure_rate` Float64,
    `repetition_map` Map(Int16, UInt64),
    `repetition_p50` Float64,
    `repetition_p90` Float64,
    `repetition_p99` Float64,
    `cache_read_tokens` UInt64,
    `cache_hit_rate` Float64
)
AS SELECT * REPLACE (toUInt16(window_seconds) AS window_seconds)
FROM
(
    SELECT
        '1m' AS grain,
        *
    FROM request_stats_of(level = '1m')
    UNION ALL
    SELECT
        '1h' AS grain,
        *
    FROM request_stats_of(level = '1h')
);

CREATE VIEW request_windows_for
AS SELECT
    window_start,
    model,
    node,
    gpu,
    requests,
    errors,
    errors_by_type,
    if(late = 1, requests, 0) AS late_requests,
    input_tokens,
    output_tokens,
    latency_sum,
    latency_buckets,
    ttft_buckets,
    tpot_buckets,
    queue_buckets,
    input_tokens_buckets,
    output_tokens_buckets,
    finish_reasons,
    outcomes,
    analysed,
    refusals,
    empty_outputs,
    format_checked,
    format_failures,
    cache_read_tokens,
    repetition_buckets
FROM request_windows
WHERE ({interval_s:UInt32} % 60) != 0
UNION ALL
SELECT
    window_start,
    model,
    node,
    toLowCardinality('') AS gpu,
    requests,
    errors,
    errors_by_type,
    late_requests,
    input_tokens,
    output_tokens,
    latency_sum,
    latency_buckets,
    ttft_buckets,
    tpot_buckets,
    queue_buckets,
    input_tokens_buckets,
    output_tokens_buckets,
    finish_reasons,
    outcomes,
    analysed,
    refusals,
    empty_outputs,
    format_checked,
    format_failures,
    cache_read_tokens,
    repetition_buckets
FROM request_windows_1m
WHERE (({interval_s:UInt32} % 60) = 0) AND (({interval_s:UInt32} % 3600) != 0)
UNION ALL
SELECT
    window_start,
    model,
    node,
    toLowCardinality('') AS gpu,
    requests,
    errors,
    errors_by_type,
    late_requests,
    input_tokens,
    output_tokens,
    latency_sum,
    latency_buckets,
    ttft_buckets,
    tpot_buckets,
    queue_buckets,
    input_tokens_buckets,
    output_tokens_buckets,
    finish_reasons,
    outcomes,
    analysed,
    refusals,
    empty_outputs,
    format_checked,
    format_failures,
    cache_read_tokens,
    repetition_buckets
FROM request_windows_1h
WHERE ({interval_s:UInt32} % 3600) = 0;

CREATE VIEW tenant_cost
(
    `window_start` DateTime('UTC'),
    `window_seconds` UInt32,
    `tenant` String,
    `model` LowCardinality(String),
    `requests` UInt64,
    `errors` UInt64,
    `input_tokens` UInt64,
    `output_tokens` UInt64,
    `cache_read_tokens` UInt64,
    `cost` Float64,
    `cost_per_request` Float64
)
AS SELECT
    t.window_start AS window_start,
    t.window_seconds AS window_seconds,
    t.tenant AS tenant,
    t.model AS model,
    t.requests AS requests,
    t.errors AS errors,
    t.input_tokens AS input_tokens,
    t.output_tokens AS output_tokens,
    t.cache_read_tokens AS cache_read_tokens,
    ((((t.input_tokens - t.cache_read_tokens) * p.input_per_million) + (t.cache_read_tokens * p.cached_input_per_million)) + (t.output_tokens * p.output_per_million)) / 1000000 AS cost,
    cost / t.requests AS cost_per_request
FROM tenant_stats AS t
INNER JOIN model_prices AS p ON t.model = p.model;

CREATE VIEW tenant_stats
(
    `window_start` DateTime('UTC'),
    `window_seconds` UInt32,
    `tenant` String,
    `model` LowCardinality(String),
    `requests` UInt64,
    `errors` UInt64,
    `error_rate` Float64,
    `input_tokens` UInt64,
    `output_tokens` UInt64,
    `cache_read_tokens` UInt64
)
AS SELECT
    window_start,
    window_seconds,
    tenant,
    model,
    sum(requests) AS requests,
    sum(errors) AS errors,
    errors / requests AS error_rate,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens
FROM tenant_windows
GROUP BY
    window_start,
    window_seconds,
    tenant,
    model;
