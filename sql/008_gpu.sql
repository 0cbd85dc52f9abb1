-- GPU samples (fleetpulse gpu-sampler -> gpu topic -> worker). Keyed by their
-- natural identity (node, GPU, time): a sample written twice after a crash or a
-- rebalance collapses, so GPU windows are exact without offset bookkeeping.
CREATE TABLE IF NOT EXISTS gpu_samples
(
    timestamp           DateTime64(3, 'UTC'),
    node                LowCardinality(String),
    gpu_uuid            LowCardinality(String),
    gpu_index           UInt16,
    gpu_name            LowCardinality(String),
    utilization         Nullable(Float32),
    memory_utilization  Nullable(Float32),
    memory_used         Nullable(UInt64),
    memory_total        Nullable(UInt64),
    temperature         Nullable(Float32),
    power_usage         Nullable(Float32),
    power_limit         Nullable(Float32),
    energy              Nullable(Float64),
    clock_sm            Nullable(Float32),
    clock_memory        Nullable(Float32),
    throttle_reasons    Nullable(UInt64),
    ecc_volatile        Nullable(UInt64),
    pcie_tx             Nullable(Float64),
    pcie_rx             Nullable(Float64),
    xid                 Nullable(UInt32)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (node, gpu_uuid, timestamp)
TTL toDateTime(timestamp) + INTERVAL 30 DAY;

-- GPU windows of any size: SELECT * FROM gpu_windows(w = 10). Gauges give
-- min/avg/max/last; counters (energy, ECC) the increase within the window.
CREATE OR REPLACE VIEW gpu_windows AS
SELECT
    toStartOfInterval(timestamp, toIntervalSecond({w:UInt32})) AS window_start,
    node, gpu_uuid, any(gpu_index) AS gpu_index, any(gpu_name) AS gpu_name,
    count() AS samples,
    min(utilization) AS utilization_min, avg(utilization) AS utilization_avg,
    max(utilization) AS utilization_max, argMax(utilization, timestamp) AS utilization_last,
    avg(memory_utilization) AS memory_utilization_avg,
    max(memory_used) AS memory_used_max, argMax(memory_used, timestamp) AS memory_used_last,
    max(memory_used / memory_total) AS memory_used_ratio,
    min(temperature) AS temperature_min, avg(temperature) AS temperature_avg,
    max(temperature) AS temperature_max, argMax(temperature, timestamp) AS temperature_last,
    min(power_usage) AS power_min, avg(power_usage) AS power_avg, max(power_usage) AS power_max,
    argMax(power_usage, timestamp) AS power_last, any(power_limit) AS power_limit,
    avg(clock_sm) AS clock_sm_avg, min(clock_sm) AS clock_sm_min, avg(clock_memory) AS clock_memory_avg,
    groupBitOr(throttle_reasons) AS throttle_reasons_any,
    max(energy) - min(energy) AS energy_joules,
    max(ecc_volatile) - min(ecc_volatile) AS ecc_volatile_increase,
    avg(pcie_tx) AS pcie_tx_avg, avg(pcie_rx) AS pcie_rx_avg,
    argMax(xid, timestamp) AS xid_last
FROM gpu_samples FINAL
GROUP BY window_start, node, gpu_uuid;
