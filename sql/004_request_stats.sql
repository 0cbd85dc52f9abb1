-- The stable query surface: one row per (window_start, model, node), merging every
-- partial row. Latency columns are seconds.
CREATE OR REPLACE VIEW request_stats AS
SELECT
    window_start,
    model,
    node,
    sum(requests) AS requests,
    sum(errors) AS errors,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    fleetpulse_bucket_quantile(sumMap(latency_buckets), 0.5) AS latency_p50,
    fleetpulse_bucket_quantile(sumMap(latency_buckets), 0.9) AS latency_p90,
    fleetpulse_bucket_quantile(sumMap(latency_buckets), 0.99) AS latency_p99,
    fleetpulse_bucket_quantile(sumMap(ttft_buckets), 0.5) AS ttft_p50,
    fleetpulse_bucket_quantile(sumMap(ttft_buckets), 0.9) AS ttft_p90,
    fleetpulse_bucket_quantile(sumMap(ttft_buckets), 0.99) AS ttft_p99,
    fleetpulse_bucket_quantile(sumMap(tpot_buckets), 0.5) AS tpot_p50,
    fleetpulse_bucket_quantile(sumMap(tpot_buckets), 0.9) AS tpot_p90,
    fleetpulse_bucket_quantile(sumMap(tpot_buckets), 0.99) AS tpot_p99
FROM request_windows
GROUP BY window_start, model, node;
