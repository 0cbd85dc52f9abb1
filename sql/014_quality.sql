-- Output quality (docs/quality.md): the signals a Recorder derives from the
-- response text on the node (fleetpulse.output.*, the text never leaves it) and
-- the prompt-cache tokens (gen_ai.usage.cache_read.input_tokens), per window:
-- analysed: requests that carried the signals (a Recorder given the text);
-- refusals, empty_outputs: of those, the ones flagged; format_checked: requests
-- with an expected format, format_failures: those that did not parse in it;
-- cache_read_tokens: summed; repetition_buckets: log-bucket sketch of the
-- repeated-trigram share (the latency sketch's buckets, 001; 0 has its own).
-- Truncation and content-filter rates need no new column: they are the shares
-- of the `length` and `content_filter` finish reasons in finish_reasons.
--
-- No backfill: every window written before this file had no event with these
-- fields (the wire had none), so their 0 and empty defaults are exact, in
-- request_windows and in the rollups alike.
ALTER TABLE request_windows
    ADD COLUMN IF NOT EXISTS analysed UInt64,
    ADD COLUMN IF NOT EXISTS refusals UInt64,
    ADD COLUMN IF NOT EXISTS empty_outputs UInt64,
    ADD COLUMN IF NOT EXISTS format_checked UInt64,
    ADD COLUMN IF NOT EXISTS format_failures UInt64,
    ADD COLUMN IF NOT EXISTS cache_read_tokens UInt64,
    ADD COLUMN IF NOT EXISTS repetition_buckets Map(Int16, UInt64);

ALTER TABLE request_windows_1m
    ADD COLUMN IF NOT EXISTS analysed SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS refusals SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS empty_outputs SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS format_checked SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS format_failures SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS cache_read_tokens SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS repetition_buckets SimpleAggregateFunction(sumMap, Map(Int16, UInt64));

ALTER TABLE request_windows_1h
    ADD COLUMN IF NOT EXISTS analysed SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS refusals SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS empty_outputs SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS format_checked SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS format_failures SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS cache_read_tokens SimpleAggregateFunction(sum, UInt64),
    ADD COLUMN IF NOT EXISTS repetition_buckets SimpleAggregateFunction(sumMap, Map(Int16, UInt64));

-- The views fill the new rollup columns from here on, swapped in place as in
-- 013 (read its comment). Keep these queries and streams/windows/sink.py's
-- _CATCH_UP_SQL the same mapping.
ALTER TABLE request_windows_1m_mv MODIFY QUERY
SELECT toStartOfMinute(window_start) AS window_start, model, node, source_topic, source_partition,
       sum(requests) AS requests, sum(errors) AS errors, sumIf(request_windows.requests, late = 1) AS late_requests,
       sumMap(errors_by_type) AS errors_by_type, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens, sum(latency_sum) AS latency_sum,
       sumMap(latency_buckets) AS latency_buckets, sumMap(ttft_buckets) AS ttft_buckets,
       sumMap(tpot_buckets) AS tpot_buckets, max(offset_last) AS offset_last,
       sumMap(queue_buckets) AS queue_buckets, sumMap(input_tokens_buckets) AS input_tokens_buckets,
       sumMap(output_tokens_buckets) AS output_tokens_buckets, sumMap(finish_reasons) AS finish_reasons,
       sumMap(outcomes) AS outcomes,
       sum(analysed) AS analysed, sum(refusals) AS refusals, sum(empty_outputs) AS empty_outputs,
       sum(format_checked) AS format_checked, sum(format_failures) AS format_failures,
       sum(cache_read_tokens) AS cache_read_tokens, sumMap(repetition_buckets) AS repetition_buckets
FROM request_windows
GROUP BY window_start, model, node, source_topic, source_partition;

ALTER TABLE request_windows_1h_mv MODIFY QUERY
SELECT toStartOfHour(window_start) AS window_start, model, node, source_topic, source_partition,
       sum(requests) AS requests, sum(errors) AS errors, sumIf(request_windows.requests, late = 1) AS late_requests,
       sumMap(errors_by_type) AS errors_by_type, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens, sum(latency_sum) AS latency_sum,
       sumMap(latency_buckets) AS latency_buckets, sumMap(ttft_buckets) AS ttft_buckets,
       sumMap(tpot_buckets) AS tpot_buckets, max(offset_last) AS offset_last,
       sumMap(queue_buckets) AS queue_buckets, sumMap(input_tokens_buckets) AS input_tokens_buckets,
       sumMap(output_tokens_buckets) AS output_tokens_buckets, sumMap(finish_reasons) AS finish_reasons,
       sumMap(outcomes) AS outcomes,
       sum(analysed) AS analysed, sum(refusals) AS refusals, sum(empty_outputs) AS empty_outputs,
       sum(format_checked) AS format_checked, sum(format_failures) AS format_failures,
       sum(cache_read_tokens) AS cache_read_tokens, sumMap(repetition_buckets) AS repetition_buckets
FROM request_windows
GROUP BY window_start, model, node, source_topic, source_partition;

-- request_stats_of (013) gains the quality columns, appended after the ones it
-- had: analysed, refusal_rate, empty_rate (of analysed), finish_map,
-- truncation_rate, content_filter_rate (of all requests), format_checked,
-- format_failure_rate (of format_checked), repetition_map and p50/p90/p99,
-- cache_read_tokens and cache_hit_rate (cached / input tokens). A rate is NaN
-- where its denominator is 0. The public views are created again with them.
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
    fleetpulse_bucket_quantile(tpot_map, 0.999) AS tpot_p999,
    sumMap(queue_buckets) AS queue_map,
    fleetpulse_bucket_quantile(queue_map, 0.5) AS queue_p50,
    fleetpulse_bucket_quantile(queue_map, 0.9) AS queue_p90,
    fleetpulse_bucket_quantile(queue_map, 0.95) AS queue_p95,
    fleetpulse_bucket_quantile(queue_map, 0.99) AS queue_p99,
    fleetpulse_bucket_quantile(queue_map, 0.999) AS queue_p999,
    sum(analysed) AS analysed,
    sum(refusals) / analysed AS refusal_rate,
    sum(empty_outputs) / analysed AS empty_rate,
    sumMap(finish_reasons) AS finish_map,
    finish_map['length'] / requests AS truncation_rate,
    finish_map['content_filter'] / requests AS content_filter_rate,
    sum(format_checked) AS format_checked,
    sum(format_failures) / format_checked AS format_failure_rate,
    sumMap(repetition_buckets) AS repetition_map,
    fleetpulse_bucket_quantile(repetition_map, 0.5) AS repetition_p50,
    fleetpulse_bucket_quantile(repetition_map, 0.9) AS repetition_p90,
    fleetpulse_bucket_quantile(repetition_map, 0.99) AS repetition_p99,
    sum(cache_read_tokens) AS cache_read_tokens,
    cache_read_tokens / input_tokens AS cache_hit_rate
FROM
(
    SELECT window_start, window_seconds, model, node, requests, errors, if(late = 1, requests, 0) AS late_requests,
           input_tokens, output_tokens, latency_buckets, ttft_buckets, tpot_buckets, queue_buckets, finish_reasons, analysed, refusals, empty_outputs, format_checked, format_failures, cache_read_tokens, repetition_buckets
    FROM request_windows WHERE {level:String} = 'node'
    UNION ALL
    SELECT window_start, window_seconds, model, toLowCardinality('') AS node, requests, errors,
           if(late = 1, requests, 0) AS late_requests, input_tokens, output_tokens, latency_buckets, ttft_buckets,
           tpot_buckets, queue_buckets, finish_reasons, analysed, refusals, empty_outputs, format_checked, format_failures, cache_read_tokens, repetition_buckets
    FROM request_windows WHERE {level:String} = 'model'
    UNION ALL
    SELECT window_start, toUInt32(60) AS window_seconds, model, node, requests, errors, late_requests,
           input_tokens, output_tokens, latency_buckets, ttft_buckets, tpot_buckets, queue_buckets, finish_reasons, analysed, refusals, empty_outputs, format_checked, format_failures, cache_read_tokens, repetition_buckets
    FROM request_windows_1m WHERE {level:String} = '1m'
    UNION ALL
    SELECT window_start, toUInt32(3600) AS window_seconds, model, node, requests, errors, late_requests,
           input_tokens, output_tokens, latency_buckets, ttft_buckets, tpot_buckets, queue_buckets, finish_reasons, analysed, refusals, empty_outputs, format_checked, format_failures, cache_read_tokens, repetition_buckets
    FROM request_windows_1h WHERE {level:String} = '1h'
)
GROUP BY window_start, window_seconds, model, node;

CREATE OR REPLACE VIEW request_stats AS
SELECT * FROM request_stats_of(level = 'node');

CREATE OR REPLACE VIEW request_stats_model AS
SELECT * EXCEPT (node) FROM request_stats_of(level = 'model');

CREATE OR REPLACE VIEW request_stats_rollup AS
SELECT * REPLACE (toUInt16(window_seconds) AS window_seconds)
FROM
(
    SELECT '1m' AS grain, * FROM request_stats_of(level = '1m')
    UNION ALL
    SELECT '1h' AS grain, * FROM request_stats_of(level = '1h')
);

-- request_windows_for (013) gains the quality columns.
CREATE OR REPLACE VIEW request_windows_for AS
SELECT window_start, model, node, gpu, requests, errors, errors_by_type, if(late = 1, requests, 0) AS late_requests,
       input_tokens, output_tokens, latency_sum, latency_buckets, ttft_buckets, tpot_buckets, queue_buckets,
       input_tokens_buckets, output_tokens_buckets, finish_reasons, outcomes,
       analysed, refusals, empty_outputs, format_checked, format_failures, cache_read_tokens, repetition_buckets
FROM request_windows WHERE {interval_s:UInt32} % 60 != 0
UNION ALL
SELECT window_start, model, node, toLowCardinality('') AS gpu, requests, errors, errors_by_type, late_requests,
       input_tokens, output_tokens, latency_sum, latency_buckets, ttft_buckets, tpot_buckets, queue_buckets,
       input_tokens_buckets, output_tokens_buckets, finish_reasons, outcomes,
       analysed, refusals, empty_outputs, format_checked, format_failures, cache_read_tokens, repetition_buckets
FROM request_windows_1m WHERE {interval_s:UInt32} % 60 = 0 AND {interval_s:UInt32} % 3600 != 0
UNION ALL
SELECT window_start, model, node, toLowCardinality('') AS gpu, requests, errors, errors_by_type, late_requests,
       input_tokens, output_tokens, latency_sum, latency_buckets, ttft_buckets, tpot_buckets, queue_buckets,
       input_tokens_buckets, output_tokens_buckets, finish_reasons, outcomes,
       analysed, refusals, empty_outputs, format_checked, format_failures, cache_read_tokens, repetition_buckets
FROM request_windows_1h WHERE {interval_s:UInt32} % 3600 = 0;
