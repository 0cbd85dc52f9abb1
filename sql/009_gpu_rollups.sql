-- Per-GPU request aggregates and the GPU rollups. request_windows rows are now
-- also split by the GPU that served the requests (gpu.id), so requests can be
-- joined with GPU windows on (window, node, GPU).
ALTER TABLE request_windows ADD COLUMN IF NOT EXISTS gpu LowCardinality(String);

-- GPU rollups, 1 minute and 1 hour, kept like the request rollups
-- (FLEETPULSE_ROLLUP_1M_TTL_DAYS / FLEETPULSE_ROLLUP_1H_TTL_DAYS). min, max and
-- last are exact even if a sample is consumed twice; avg and samples could count
-- such a sample twice (the raw gpu_samples table collapses it).
CREATE TABLE IF NOT EXISTS gpu_windows_1m
(
    window_start      DateTime('UTC'),
    node              LowCardinality(String),
    gpu_uuid          LowCardinality(String),
    gpu_index         SimpleAggregateFunction(any, UInt16),
    samples           SimpleAggregateFunction(sum, UInt64),
    utilization_sum   SimpleAggregateFunction(sum, Float64),
    utilization_max   SimpleAggregateFunction(max, Nullable(Float32)),
    memory_used_max   SimpleAggregateFunction(max, Nullable(UInt64)),
    temperature_max   SimpleAggregateFunction(max, Nullable(Float32)),
    power_sum         SimpleAggregateFunction(sum, Float64),
    power_max         SimpleAggregateFunction(max, Nullable(Float32)),
    energy_min        SimpleAggregateFunction(min, Nullable(Float64)),
    energy_max        SimpleAggregateFunction(max, Nullable(Float64)),
    throttle_any      SimpleAggregateFunction(groupBitOr, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (window_start, node, gpu_uuid)
TTL window_start + INTERVAL 180 DAY;

CREATE TABLE IF NOT EXISTS gpu_windows_1h AS gpu_windows_1m
ENGINE = AggregatingMergeTree
ORDER BY (window_start, node, gpu_uuid)
TTL window_start + INTERVAL 730 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS gpu_windows_1m_mv TO gpu_windows_1m AS
SELECT toStartOfMinute(timestamp) AS window_start, node, gpu_uuid, any(gpu_index) AS gpu_index,
       count() AS samples, sum(ifNull(utilization, 0)) AS utilization_sum, max(utilization) AS utilization_max,
       max(memory_used) AS memory_used_max, max(temperature) AS temperature_max,
       sum(ifNull(power_usage, 0)) AS power_sum, max(power_usage) AS power_max,
       min(energy) AS energy_min, max(energy) AS energy_max, groupBitOr(ifNull(throttle_reasons, 0)) AS throttle_any
FROM gpu_samples
GROUP BY window_start, node, gpu_uuid;

CREATE MATERIALIZED VIEW IF NOT EXISTS gpu_windows_1h_mv TO gpu_windows_1h AS
SELECT toStartOfHour(timestamp) AS window_start, node, gpu_uuid, any(gpu_index) AS gpu_index,
       count() AS samples, sum(ifNull(utilization, 0)) AS utilization_sum, max(utilization) AS utilization_max,
       max(memory_used) AS memory_used_max, max(temperature) AS temperature_max,
       sum(ifNull(power_usage, 0)) AS power_sum, max(power_usage) AS power_max,
       min(energy) AS energy_min, max(energy) AS energy_max, groupBitOr(ifNull(throttle_reasons, 0)) AS throttle_any
FROM gpu_samples
GROUP BY window_start, node, gpu_uuid;

-- Requests joined with the GPU that served them, per window of w seconds:
-- SELECT * FROM gpu_efficiency(w = 10). gpu is the request's gpu.id, matched to
-- the GPU's index or UUID.
CREATE OR REPLACE VIEW gpu_efficiency AS
SELECT
    r.window_start AS window_start, r.node AS node, r.gpu AS gpu,
    r.requests AS requests, r.output_tokens AS output_tokens, r.mean_latency AS mean_latency,
    g.utilization_avg AS utilization_avg, g.power_avg AS power_avg, g.energy_joules AS energy_joules,
    r.output_tokens / {w:UInt32} AS tokens_per_gpu_second,
    if(g.energy_joules > 0, r.requests / (g.energy_joules / 3600000), NULL) AS requests_per_kwh
FROM
(
    SELECT window_start, node, gpu, sum(request_windows.requests) AS requests,
           sum(request_windows.output_tokens) AS output_tokens,
           sum(latency_sum) / sum(request_windows.requests) AS mean_latency
    FROM request_windows WHERE window_seconds = {w:UInt32} AND gpu != ''
    GROUP BY window_start, node, gpu
) AS r
INNER JOIN
(
    SELECT toStartOfInterval(timestamp, toIntervalSecond({w:UInt32})) AS window_start, node,
           toString(any(gpu_index)) AS gpu_index, gpu_uuid, avg(utilization) AS utilization_avg,
           avg(power_usage) AS power_avg, max(energy) - min(energy) AS energy_joules
    FROM gpu_samples FINAL
    GROUP BY window_start, node, gpu_uuid
) AS g
ON (r.window_start = g.window_start AND r.node = g.node AND r.gpu = g.gpu_index)
OR (r.window_start = g.window_start AND r.node = g.node AND r.gpu = g.gpu_uuid);
