-- Drift detection (streams/drift/evaluator.py). Feature histograms ride in the window rows,
-- so they are written in the same atomic insert (exactly once, like the counts):
-- numeric features as log-bucket maps, categorical ones as value -> count.
ALTER TABLE request_windows
    ADD COLUMN IF NOT EXISTS input_tokens_buckets Map(Int16, UInt64),
    ADD COLUMN IF NOT EXISTS output_tokens_buckets Map(Int16, UInt64),
    ADD COLUMN IF NOT EXISTS queue_buckets Map(Int16, UInt64),
    ADD COLUMN IF NOT EXISTS operations Map(String, UInt64),
    ADD COLUMN IF NOT EXISTS finish_reasons Map(String, UInt64),
    ADD COLUMN IF NOT EXISTS outcomes Map(String, UInt64);

-- One row per evaluation: (window, model, feature). Evaluating the same window
-- again (a restart, two workers) writes the same values; ReplacingMergeTree keeps one.
CREATE TABLE IF NOT EXISTS drift_windows
(
    window_start  DateTime('UTC'),
    model         LowCardinality(String),
    feature       LowCardinality(String),
    reference     LowCardinality(String),
    psi           Float64,
    ks            Float64,
    js            Float64,
    n_ref         UInt64,
    n_cur         UInt64,
    threshold     Float64,
    decision      LowCardinality(String),
    evaluated_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(evaluated_at)
ORDER BY (model, feature, window_start)
TTL window_start + INTERVAL 180 DAY;

CREATE OR REPLACE VIEW drift_stats AS
SELECT window_start AS window, model, feature, psi, ks, js, n_ref, n_cur, decision, threshold, reference
FROM drift_windows FINAL;

-- Frozen references: `fleetpulse drift baseline` freezes the bins and counts of a
-- period; every version is kept, the newest per (model, feature) is used.
CREATE TABLE IF NOT EXISTS drift_baselines
(
    model       LowCardinality(String),
    feature     LowCardinality(String),
    version     UInt32,
    range_from  DateTime('UTC'),
    range_to    DateTime('UTC'),
    edges       Array(Int16),
    categories  Array(String),
    counts      Array(UInt64),
    created_at  DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree
ORDER BY (model, feature, version);
