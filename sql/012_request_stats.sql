-- The stable query surface. Every view merges all partial rows of its grain:
-- on-time rows and late corrections (late_requests says how many came after the
-- watermark had passed their window). Latencies in seconds; *_per_s are per
-- second of window; tokens_per_s counts generated (output) tokens. Rows of
-- different window sizes (FLEETPULSE_WINDOW_SECONDS changed) stay apart.
--
-- request_stats_of(level = ...) computes every column once, for rows of one
-- level: 'node' (base windows per node), 'model' (base windows, all nodes of a
-- model merged), '1m' or '1h' (rollups per node). The level is a constant when
-- the view runs, so only its branch of the UNION reads a table, and filters on
-- the grouping columns reach that table's key. The public views below pick a
-- level. A database migrated before this file had the same three views written
-- out in full (005); this replaces them with identical columns.
CREATE OR REPLACE VIEW request_stats_of AS
SELECT
    window_start, window_seconds, model, node,
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
    SELECT window_start, window_seconds, model, node, requests, errors, if(late = 1, requests, 0) AS late_requests,
           input_tokens, output_tokens, latency_buckets, ttft_buckets, tpot_buckets
    FROM request_windows WHERE {level:String} = 'node'
    UNION ALL
    SELECT window_start, window_seconds, model, toLowCardinality('') AS node, requests, errors,
           if(late = 1, requests, 0) AS late_requests, input_tokens, output_tokens, latency_buckets, ttft_buckets,
           tpot_buckets
    FROM request_windows WHERE {level:String} = 'model'
    UNION ALL
    SELECT window_start, toUInt32(60) AS window_seconds, model, node, requests, errors, late_requests,
           input_tokens, output_tokens, latency_buckets, ttft_buckets, tpot_buckets
    FROM request_windows_1m WHERE {level:String} = '1m'
    UNION ALL
    SELECT window_start, toUInt32(3600) AS window_seconds, model, node, requests, errors, late_requests,
           input_tokens, output_tokens, latency_buckets, ttft_buckets, tpot_buckets
    FROM request_windows_1h WHERE {level:String} = '1h'
)
GROUP BY window_start, window_seconds, model, node;

-- Base windows (FLEETPULSE_WINDOW_SECONDS), per node.
CREATE OR REPLACE VIEW request_stats AS
SELECT * FROM request_stats_of(level = 'node');

-- Base windows, per model: all nodes merged.
CREATE OR REPLACE VIEW request_stats_model AS
SELECT * EXCEPT (node) FROM request_stats_of(level = 'model');

-- 1 minute and 1 hour rollups, per node: filter on `grain` ('1m' or '1h').
-- window_seconds is a UInt16 here, as it has always been in this view.
CREATE OR REPLACE VIEW request_stats_rollup AS
SELECT * REPLACE (toUInt16(window_seconds) AS window_seconds)
FROM
(
    SELECT '1m' AS grain, * FROM request_stats_of(level = '1m')
    UNION ALL
    SELECT '1h' AS grain, * FROM request_stats_of(level = '1h')
);
