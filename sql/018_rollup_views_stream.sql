-- The rollup views pass each base row through, mapped to its minute or hour,
-- instead of grouping the inserted block first. Their tables are
-- AggregatingMergeTree with SimpleAggregateFunction columns, so rows of one key
-- are summed by the table's merges, and every reader already sums them (a
-- rollup's parts are never guaranteed merged). The GROUP BY with its sumMap
-- states was most of what an insert cost chDB at high cardinality, where it
-- groups nothing: one insert of 40,000 window rows of 40,000 series took
-- 1.2 s and +144 MiB of peak memory with it, 0.3 s and +78 MiB without (one
-- process, one sitting); at 24 series, 0.043 s against 0.031 s per insert.
-- Swapped in place as in 013 (read its comment). The mapping is the one
-- streams/windows/sink.py's _CATCH_UP_SQL sums: keep the two the same.
ALTER TABLE request_windows_1m_mv MODIFY QUERY
SELECT toStartOfMinute(window_start) AS window_start, model, node, source_topic, source_partition,
       requests, errors, if(late = 1, requests, 0) AS late_requests, errors_by_type, input_tokens, output_tokens,
       latency_sum, latency_buckets, ttft_buckets, tpot_buckets, offset_last, queue_buckets, input_tokens_buckets,
       output_tokens_buckets, finish_reasons, outcomes, analysed, refusals, empty_outputs, format_checked,
       format_failures, cache_read_tokens, repetition_buckets
FROM request_windows;

ALTER TABLE request_windows_1h_mv MODIFY QUERY
SELECT toStartOfHour(window_start) AS window_start, model, node, source_topic, source_partition,
       requests, errors, if(late = 1, requests, 0) AS late_requests, errors_by_type, input_tokens, output_tokens,
       latency_sum, latency_buckets, ttft_buckets, tpot_buckets, offset_last, queue_buckets, input_tokens_buckets,
       output_tokens_buckets, finish_reasons, outcomes, analysed, refusals, empty_outputs, format_checked,
       format_failures, cache_read_tokens, repetition_buckets
FROM request_windows;
