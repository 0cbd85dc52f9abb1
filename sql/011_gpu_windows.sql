-- GPU windows as written tables: the base window (FLEETPULSE_WINDOW_SECONDS),
-- 1 minute and 1 hour, each row per (window, node, GPU, window size). The worker
-- computes a window from gpu_samples FINAL once it has closed, and again when a
-- late sample lands in it (streams/gpu/windows.py); a recomputation replaces the
-- row it supersedes (ReplacingMergeTree on computed_at), so every level is exact
-- after crashes, replays and late data. window_seconds is in the key, as it is a
-- column of request_windows: after a change of FLEETPULSE_WINDOW_SECONDS a window
-- of the new size never replaces one of the old size that starts at the same time.
--
-- A database that ran an earlier version of this file as 010 (the same tables
-- without window_seconds) has them dropped and created again here: the worker
-- refills them from gpu_samples, so 1 minute and 1 hour windows older than
-- gpu_samples' retention (FLEETPULSE_WINDOWS_TTL_DAYS) are lost once. Dropping
-- first also makes the file safe to run again after a crash.
DROP TABLE IF EXISTS gpu_efficiency;
DROP TABLE IF EXISTS gpu_windows_1m;
DROP TABLE IF EXISTS gpu_windows_1h;
DROP TABLE IF EXISTS gpu_windows;

CREATE TABLE IF NOT EXISTS gpu_windows
(
    window_start           DateTime('UTC'),
    window_seconds         UInt32,
    node                   LowCardinality(String),
    gpu_uuid               LowCardinality(String),
    gpu_index              UInt16,
    gpu_name               LowCardinality(String),
    samples                UInt32,
    utilization_min        Nullable(Float32),
    utilization_avg        Nullable(Float64),
    utilization_max        Nullable(Float32),
    utilization_last       Nullable(Float32),
    memory_utilization_avg Nullable(Float64),
    memory_used_max        Nullable(UInt64),
    memory_used_last       Nullable(UInt64),
    memory_total           Nullable(UInt64),
    memory_used_ratio      Nullable(Float64),
    temperature_min        Nullable(Float32),
    temperature_avg        Nullable(Float64),
    temperature_max        Nullable(Float32),
    temperature_last       Nullable(Float32),
    power_min              Nullable(Float32),
    power_avg              Nullable(Float64),
    power_max              Nullable(Float32),
    power_last             Nullable(Float32),
    power_limit            Nullable(Float32),
    clock_sm_min           Nullable(Float32),
    clock_sm_avg           Nullable(Float64),
    clock_memory_avg       Nullable(Float64),
    throttle_reasons_any   UInt64,
    energy_joules          Nullable(Float64),
    ecc_volatile_increase  Nullable(Float64),
    pcie_tx_avg            Nullable(Float64),
    pcie_rx_avg            Nullable(Float64),
    xid_last               Nullable(UInt32),
    computed_at            DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (window_start, node, gpu_uuid, window_seconds)
TTL window_start + INTERVAL 30 DAY;

CREATE TABLE IF NOT EXISTS gpu_windows_1m AS gpu_windows
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (window_start, node, gpu_uuid, window_seconds)
TTL window_start + INTERVAL 180 DAY;

CREATE TABLE IF NOT EXISTS gpu_windows_1h AS gpu_windows
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (window_start, node, gpu_uuid, window_seconds)
TTL window_start + INTERVAL 730 DAY;

-- Requests joined with the GPU that served them, per base window of the same
-- size: gpu is the request's gpu.id, matched to the GPU's index or its UUID.
CREATE OR REPLACE VIEW gpu_efficiency AS
SELECT
    r.window_start AS window_start, r.node AS node, r.gpu AS gpu, g.gpu_uuid AS gpu_uuid,
    r.requests AS requests, r.output_tokens AS output_tokens, r.mean_latency AS mean_latency,
    g.utilization_avg AS utilization_avg, g.power_avg AS power_avg, g.energy_joules AS energy_joules,
    r.output_tokens / r.window_seconds AS tokens_per_gpu_second,
    if(g.energy_joules > 0, r.requests / (g.energy_joules / 3600000), NULL) AS requests_per_kwh
FROM
(
    SELECT window_start, window_seconds, node, gpu, sum(request_windows.requests) AS requests,
           sum(request_windows.output_tokens) AS output_tokens,
           sum(latency_sum) / sum(request_windows.requests) AS mean_latency
    FROM request_windows WHERE gpu != ''
    GROUP BY window_start, window_seconds, node, gpu
) AS r
INNER JOIN
(
    SELECT window_start, window_seconds, node, toString(gpu_index) AS gpu_index, gpu_uuid, utilization_avg,
           power_avg, energy_joules
    FROM gpu_windows FINAL
) AS g
ON (r.window_start = g.window_start AND r.window_seconds = g.window_seconds AND r.node = g.node AND r.gpu = g.gpu_index)
OR (r.window_start = g.window_start AND r.window_seconds = g.window_seconds AND r.node = g.node AND r.gpu = g.gpu_uuid);
