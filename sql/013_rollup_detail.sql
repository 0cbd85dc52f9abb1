-- The rollups keep the detail maps too: queue time, input and output tokens (log
-- buckets) and finish reasons and outcomes (value -> count), so dashboards over
-- long ranges get their quantiles and shares from request_windows_1m/1h.
-- (operations stays in the 10 s windows only.)
ALTER TABLE request_windows_1m
    ADD COLUMN IF NOT EXISTS queue_buckets SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    ADD COLUMN IF NOT EXISTS input_tokens_buckets SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    ADD COLUMN IF NOT EXISTS output_tokens_buckets SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    ADD COLUMN IF NOT EXISTS finish_reasons SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    ADD COLUMN IF NOT EXISTS outcomes SimpleAggregateFunction(sumMap, Map(String, UInt64));

ALTER TABLE request_windows_1h
    ADD COLUMN IF NOT EXISTS queue_buckets SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    ADD COLUMN IF NOT EXISTS input_tokens_buckets SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    ADD COLUMN IF NOT EXISTS output_tokens_buckets SimpleAggregateFunction(sumMap, Map(Int16, UInt64)),
    ADD COLUMN IF NOT EXISTS finish_reasons SimpleAggregateFunction(sumMap, Map(String, UInt64)),
    ADD COLUMN IF NOT EXISTS outcomes SimpleAggregateFunction(sumMap, Map(String, UInt64));

-- The materialized views fill the new columns from here on. MODIFY QUERY swaps
-- a view's query in place (ClickHouse >= 23.12; chDB and the compose file's 25.3
-- have it), so every insert goes through the old query or the new one, and no
-- batch misses a rollup's counts: a DROP and CREATE would leave an instant
-- without a view, and a batch written in it would be in request_windows but not
-- in the rollups, where catch_up_rollups (streams/windows/sink.py), which
-- compares only the newest offsets, would never see it. Keep this query and
-- sink.py's _CATCH_UP_SQL the same mapping.
ALTER TABLE request_windows_1m_mv MODIFY QUERY
SELECT toStartOfMinute(window_start) AS window_start, model, node, source_topic, source_partition,
       sum(requests) AS requests, sum(errors) AS errors, sumIf(request_windows.requests, late = 1) AS late_requests,
       sumMap(errors_by_type) AS errors_by_type, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens, sum(latency_sum) AS latency_sum,
       sumMap(latency_buckets) AS latency_buckets, sumMap(ttft_buckets) AS ttft_buckets,
       sumMap(tpot_buckets) AS tpot_buckets, max(offset_last) AS offset_last,
       sumMap(queue_buckets) AS queue_buckets, sumMap(input_tokens_buckets) AS input_tokens_buckets,
       sumMap(output_tokens_buckets) AS output_tokens_buckets, sumMap(finish_reasons) AS finish_reasons,
       sumMap(outcomes) AS outcomes
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
       sumMap(outcomes) AS outcomes
FROM request_windows
GROUP BY window_start, model, node, source_topic, source_partition;

-- Backfill: the windows already in request_windows get their maps into the
-- rollups as extra rows with only the maps set. Every other column takes its
-- default, 0 (and offset_last 0, which max() ignores), and the rollups add their
-- rows up (sum, sumMap, max), so each count stays what it was and each map ends
-- as the sum over exactly the windows the rollup already counts:
-- - only rows at or below the rollup's newest offset of their partition: a
--   batch the rollup lacks (a crash between the base insert and the views) is
--   inserted whole, maps and all, by catch_up_rollups when a worker takes the
--   partition, and must not be counted here too;
-- - only keys of the rollup (minute or hour, model, node, source partition)
--   that have no map yet: a key's rows come out of the GROUP BY as one row, in
--   one block, so one part; a run of this file that crashed midway (this
--   statement is then run again) and the same file run twice leave every key
--   filled once. Keys whose windows have no detail at all are skipped.
-- Windows older than request_windows' retention (FLEETPULSE_WINDOWS_TTL_DAYS)
-- are gone from it: their rollup rows keep their counts and have empty maps.
-- Upgrading: a worker applies pending migrations when it starts, with no lock.
-- On chDB the migrating worker is the only process with the database open, so
-- nothing else writes. On a server, stop every worker, run `fleetpulse migrate`
-- (or start one worker), then start the rest: a worker of the old release that
-- writes meanwhile loses no counts, but a batch it writes between the ALTERs
-- above and this statement gives its minute and hour a map from the new view,
-- so the backfill skips them and their maps stay short; and two migrations at
-- once could both fill a key before either sees the other's rows.
INSERT INTO request_windows_1m (window_start, model, node, source_topic, source_partition, queue_buckets,
                                input_tokens_buckets, output_tokens_buckets, finish_reasons, outcomes)
SELECT toStartOfMinute(w.window_start) AS minute, w.model, w.node, w.source_topic, w.source_partition,
       sumMap(w.queue_buckets) AS queue, sumMap(w.input_tokens_buckets) AS tokens_in,
       sumMap(w.output_tokens_buckets) AS tokens_out, sumMap(w.finish_reasons) AS finish,
       sumMap(w.outcomes) AS outcome
FROM request_windows AS w
INNER JOIN
(
    SELECT source_topic, source_partition, max(offset_last) AS held
    FROM request_windows_1m GROUP BY source_topic, source_partition
) AS r ON w.source_topic = r.source_topic AND w.source_partition = r.source_partition
WHERE w.offset_last <= r.held
GROUP BY minute, w.model, w.node, w.source_topic, w.source_partition
HAVING (notEmpty(queue) OR notEmpty(tokens_in) OR notEmpty(tokens_out) OR notEmpty(finish) OR notEmpty(outcome))
   AND (minute, w.model, w.node, w.source_topic, w.source_partition) NOT IN
       (SELECT window_start, model, node, source_topic, source_partition FROM request_windows_1m
        WHERE notEmpty(queue_buckets) OR notEmpty(input_tokens_buckets) OR notEmpty(output_tokens_buckets)
           OR notEmpty(finish_reasons) OR notEmpty(outcomes));

INSERT INTO request_windows_1h (window_start, model, node, source_topic, source_partition, queue_buckets,
                                input_tokens_buckets, output_tokens_buckets, finish_reasons, outcomes)
SELECT toStartOfHour(w.window_start) AS hour, w.model, w.node, w.source_topic, w.source_partition,
       sumMap(w.queue_buckets) AS queue, sumMap(w.input_tokens_buckets) AS tokens_in,
       sumMap(w.output_tokens_buckets) AS tokens_out, sumMap(w.finish_reasons) AS finish,
       sumMap(w.outcomes) AS outcome
FROM request_windows AS w
INNER JOIN
(
    SELECT source_topic, source_partition, max(offset_last) AS held
    FROM request_windows_1h GROUP BY source_topic, source_partition
) AS r ON w.source_topic = r.source_topic AND w.source_partition = r.source_partition
WHERE w.offset_last <= r.held
GROUP BY hour, w.model, w.node, w.source_topic, w.source_partition
HAVING (notEmpty(queue) OR notEmpty(tokens_in) OR notEmpty(tokens_out) OR notEmpty(finish) OR notEmpty(outcome))
   AND (hour, w.model, w.node, w.source_topic, w.source_partition) NOT IN
       (SELECT window_start, model, node, source_topic, source_partition FROM request_windows_1h
        WHERE notEmpty(queue_buckets) OR notEmpty(input_tokens_buckets) OR notEmpty(output_tokens_buckets)
           OR notEmpty(finish_reasons) OR notEmpty(outcomes));

-- request_stats_of (012) gains queue time: queue_map and queue_p50 ... queue_p999,
-- at every level, appended after the columns it had, so readers that take
-- columns by position keep working. The public views are created again with
-- it: a view's columns are fixed when it is created.
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
    fleetpulse_bucket_quantile(queue_map, 0.999) AS queue_p999
FROM
(
    SELECT window_start, window_seconds, model, node, requests, errors, if(late = 1, requests, 0) AS late_requests,
           input_tokens, output_tokens, latency_buckets, ttft_buckets, tpot_buckets, queue_buckets
    FROM request_windows WHERE {level:String} = 'node'
    UNION ALL
    SELECT window_start, window_seconds, model, toLowCardinality('') AS node, requests, errors,
           if(late = 1, requests, 0) AS late_requests, input_tokens, output_tokens, latency_buckets, ttft_buckets,
           tpot_buckets, queue_buckets
    FROM request_windows WHERE {level:String} = 'model'
    UNION ALL
    SELECT window_start, toUInt32(60) AS window_seconds, model, node, requests, errors, late_requests,
           input_tokens, output_tokens, latency_buckets, ttft_buckets, tpot_buckets, queue_buckets
    FROM request_windows_1m WHERE {level:String} = '1m'
    UNION ALL
    SELECT window_start, toUInt32(3600) AS window_seconds, model, node, requests, errors, late_requests,
           input_tokens, output_tokens, latency_buckets, ttft_buckets, tpot_buckets, queue_buckets
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

-- request_windows_for(interval_s = N): the window rows of the coarsest grain
-- that divides N seconds: the 1 hour rollup when N is a multiple of 3600, else
-- the 1 minute rollup when it is one of 60, else the 10 s windows. Dashboards
-- group them into N-second buckets (sum, sumMap, fleetpulse_bucket_quantile of
-- the merged map), so a bucket never splits a row and reads the fewest rows. As
-- in request_stats_of, N is a constant when the view runs (a literal or a bound
-- query parameter), so only the chosen branch reads a table, and a filter on
-- window_start reaches its primary key. The rows are partial: several per
-- window (one per source partition, batch or unmerged part), to be summed.
-- gpu is the GPU that served the requests in the 10 s windows and '' in the
-- rollups, which are not split by GPU.
CREATE OR REPLACE VIEW request_windows_for AS
SELECT window_start, model, node, gpu, requests, errors, errors_by_type, if(late = 1, requests, 0) AS late_requests,
       input_tokens, output_tokens, latency_sum, latency_buckets, ttft_buckets, tpot_buckets, queue_buckets,
       input_tokens_buckets, output_tokens_buckets, finish_reasons, outcomes
FROM request_windows WHERE {interval_s:UInt32} % 60 != 0
UNION ALL
SELECT window_start, model, node, toLowCardinality('') AS gpu, requests, errors, errors_by_type, late_requests,
       input_tokens, output_tokens, latency_sum, latency_buckets, ttft_buckets, tpot_buckets, queue_buckets,
       input_tokens_buckets, output_tokens_buckets, finish_reasons, outcomes
FROM request_windows_1m WHERE {interval_s:UInt32} % 60 = 0 AND {interval_s:UInt32} % 3600 != 0
UNION ALL
SELECT window_start, model, node, toLowCardinality('') AS gpu, requests, errors, errors_by_type, late_requests,
       input_tokens, output_tokens, latency_sum, latency_buckets, ttft_buckets, tpot_buckets, queue_buckets,
       input_tokens_buckets, output_tokens_buckets, finish_reasons, outcomes
FROM request_windows_1h WHERE {interval_s:UInt32} % 3600 = 0;

-- gpu_windows_for(interval_s = N): the same choice over the GPU windows, read
-- FINAL (a recomputed window replaces the row it supersedes, 011). One row per
-- (window, node, GPU), except that after a change of FLEETPULSE_WINDOW_SECONDS
-- the base table holds windows of both sizes for an hour: window_seconds tells
-- them apart.
CREATE OR REPLACE VIEW gpu_windows_for AS
SELECT window_start, window_seconds, node, gpu_uuid, gpu_index, gpu_name, samples, utilization_avg, utilization_max,
       memory_used_max, memory_total, memory_used_ratio, temperature_max, power_avg, power_max, power_limit,
       clock_sm_avg, throttle_reasons_any, energy_joules, ecc_volatile_increase, xid_last
FROM gpu_windows FINAL WHERE {interval_s:UInt32} % 60 != 0
UNION ALL
SELECT window_start, window_seconds, node, gpu_uuid, gpu_index, gpu_name, samples, utilization_avg, utilization_max,
       memory_used_max, memory_total, memory_used_ratio, temperature_max, power_avg, power_max, power_limit,
       clock_sm_avg, throttle_reasons_any, energy_joules, ecc_volatile_increase, xid_last
FROM gpu_windows_1m FINAL WHERE {interval_s:UInt32} % 60 = 0 AND {interval_s:UInt32} % 3600 != 0
UNION ALL
SELECT window_start, window_seconds, node, gpu_uuid, gpu_index, gpu_name, samples, utilization_avg, utilization_max,
       memory_used_max, memory_total, memory_used_ratio, temperature_max, power_avg, power_max, power_limit,
       clock_sm_avg, throttle_reasons_any, energy_joules, ecc_volatile_increase, xid_last
FROM gpu_windows_1h FINAL WHERE {interval_s:UInt32} % 3600 = 0;
