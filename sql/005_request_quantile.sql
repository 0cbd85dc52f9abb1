-- Any quantile of the base windows: SELECT * FROM request_quantile(q = 0.9999).
-- (The request_stats views were made here once; 012 makes them now.)
CREATE OR REPLACE VIEW request_quantile AS
SELECT
    window_start, model, node,
    fleetpulse_bucket_quantile(sumMap(latency_buckets), {q:Float64}) AS latency,
    fleetpulse_bucket_quantile(sumMap(ttft_buckets), {q:Float64}) AS ttft,
    fleetpulse_bucket_quantile(sumMap(tpot_buckets), {q:Float64}) AS tpot
FROM request_windows
GROUP BY window_start, model, node;
