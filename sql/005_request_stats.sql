-- The stable query surface. Every view merges all partial rows of its grain:
-- on-time rows and late corrections (late_requests says how many came after the
-- watermark had passed their window). Latencies in seconds; *_per_s are per
-- second of window; tokens_per_s counts generated (output) tokens. Rows of
-- different window sizes (FLEETPULSE_WINDOW_SECONDS changed) stay apart.

-- 10 s windows, per node.
CREATE OR REPLACE VIEW request_stats AS
SELECT
    window_start, window_seconds, model, node,
    sum(requests) AS requests,
    sum(errors) AS errors,
    errors / requests AS error_rate,
    sumIf(request_windows.requests, late = 1) AS late_requests,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    requests / window_seconds AS requests_per_s,
    output_tokens / window_seconds AS tokens_per_s,
    input_tokens / window_seconds AS input_tokens_per_s,
    sumMap(latency_buckets) AS latency_map,
    sumMap(ttft_buckets) AS ttft_map,
    sumMap(tpot_buckets) AS tpot_map,
    fleetpulse_bucket_quantile(latency_map, 0.5) AS latency_p50,
    fleetpulse_bucket_quantile(latency_map, 0.9) AS latency_p90,
    fleetpulse_bucket_quantile(latency_map, 0.95) AS latency_p95,
    fleetpulse_bucket_quantile(latency_map, 0.99) AS latency_p99,
    fleetpulse_bucket_quantile(latency_map, 0.999) AS latency_p999,
    fleetpulse_bucket_quantile(ttft_map, 0.5) AS ttft_p50,
    fleetpulse_bucket_quantile(ttft_map, 0.9) AS ttft_p90,
    fleetpulse_bucket_quantile(ttft_map, 0.95) AS ttft_p95,
    fleetpulse_bucket_quantile(ttft_map, 0.99) AS ttft_p99,
    fleetpulse_bucket_quantile(ttft_map, 0.999) AS ttft_p999,
    fleetpulse_bucket_quantile(tpot_map, 0.5) AS tpot_p50,
    fleetpulse_bucket_quantile(tpot_map, 0.9) AS tpot_p90,
    fleetpulse_bucket_quantile(tpot_map, 0.95) AS tpot_p95,
    fleetpulse_bucket_quantile(tpot_map, 0.99) AS tpot_p99,
    fleetpulse_bucket_quantile(tpot_map, 0.999) AS tpot_p999
FROM request_windows
GROUP BY window_start, window_seconds, model, node;

-- 10 s windows, per model: all nodes merged.
CREATE OR REPLACE VIEW request_stats_model AS
SELECT
    window_start, window_seconds, model,
    sum(requests) AS requests,
    sum(errors) AS errors,
    errors / requests AS error_rate,
    sumIf(request_windows.requests, late = 1) AS late_requests,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    requests / window_seconds AS requests_per_s,
    output_tokens / window_seconds AS tokens_per_s,
    input_tokens / window_seconds AS input_tokens_per_s,
    sumMap(latency_buckets) AS latency_map,
    sumMap(ttft_buckets) AS ttft_map,
    sumMap(tpot_buckets) AS tpot_map,
    fleetpulse_bucket_quantile(latency_map, 0.5) AS latency_p50,
    fleetpulse_bucket_quantile(latency_map, 0.9) AS latency_p90,
    fleetpulse_bucket_quantile(latency_map, 0.95) AS latency_p95,
    fleetpulse_bucket_quantile(latency_map, 0.99) AS latency_p99,
    fleetpulse_bucket_quantile(latency_map, 0.999) AS latency_p999,
    fleetpulse_bucket_quantile(ttft_map, 0.5) AS ttft_p50,
    fleetpulse_bucket_quantile(ttft_map, 0.9) AS ttft_p90,
    fleetpulse_bucket_quantile(ttft_map, 0.95) AS ttft_p95,
    fleetpulse_bucket_quantile(ttft_map, 0.99) AS ttft_p99,
    fleetpulse_bucket_quantile(ttft_map, 0.999) AS ttft_p999,
    fleetpulse_bucket_quantile(tpot_map, 0.5) AS tpot_p50,
    fleetpulse_bucket_quantile(tpot_map, 0.9) AS tpot_p90,
    fleetpulse_bucket_quantile(tpot_map, 0.95) AS tpot_p95,
    fleetpulse_bucket_quantile(tpot_map, 0.99) AS tpot_p99,
    fleetpulse_bucket_quantile(tpot_map, 0.999) AS tpot_p999
FROM request_windows
GROUP BY window_start, window_seconds, model;

-- 1 minute and 1 hour rollups, per node: filter on `grain` ('1m' or '1h').
CREATE OR REPLACE VIEW request_stats_rollup AS
SELECT
    grain, window_start, window_seconds, model, node,
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
    fleetpulse_bucket_quantile(latency_map, 0.5) AS latency_p50,
    fleetpulse_bucket_quantile(latency_map, 0.9) AS latency_p90,
    fleetpulse_bucket_quantile(latency_map, 0.95) AS latency_p95,
    fleetpulse_bucket_quantile(latency_map, 0.99) AS latency_p99,
    fleetpulse_bucket_quantile(latency_map, 0.999) AS latency_p999,
    fleetpulse_bucket_quantile(ttft_map, 0.5) AS ttft_p50,
    fleetpulse_bucket_quantile(ttft_map, 0.9) AS ttft_p90,
    fleetpulse_bucket_quantile(ttft_map, 0.95) AS ttft_p95,
    fleetpulse_bucket_quantile(ttft_map, 0.99) AS ttft_p99,
    fleetpulse_bucket_quantile(ttft_map, 0.999) AS ttft_p999,
    fleetpulse_bucket_quantile(tpot_map, 0.5) AS tpot_p50,
    fleetpulse_bucket_quantile(tpot_map, 0.9) AS tpot_p90,
    fleetpulse_bucket_quantile(tpot_map, 0.95) AS tpot_p95,
    fleetpulse_bucket_quantile(tpot_map, 0.99) AS tpot_p99,
    fleetpulse_bucket_quantile(tpot_map, 0.999) AS tpot_p999
FROM
(
    SELECT '1m' AS grain, 60 AS window_seconds, * FROM request_windows_1m
    UNION ALL
    SELECT '1h' AS grain, 3600 AS window_seconds, * FROM request_windows_1h
)
GROUP BY grain, window_start, window_seconds, model, node;

-- Any quantile of 10 s windows: SELECT * FROM request_quantile(q = 0.9999).
CREATE OR REPLACE VIEW request_quantile AS
SELECT
    window_start, model, node,
    fleetpulse_bucket_quantile(sumMap(latency_buckets), {q:Float64}) AS latency,
    fleetpulse_bucket_quantile(sumMap(ttft_buckets), {q:Float64}) AS ttft,
    fleetpulse_bucket_quantile(sumMap(tpot_buckets), {q:Float64}) AS tpot
FROM request_windows
GROUP BY window_start, model, node;
