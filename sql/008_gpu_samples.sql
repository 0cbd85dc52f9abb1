-- GPU samples (fleetpulse gpu-sampler -> gpu topic -> worker). Keyed by their
-- natural identity (node, GPU, time): a sample written twice after a crash or a
-- rebalance collapses, so GPU windows are exact without offset bookkeeping.
-- (This file once also made a gpu_windows view; 010 drops it where it exists.)
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
