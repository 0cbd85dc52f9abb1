"""The ClickHouse sink: one ``write(batch)``; backpressure is a typed exception.

Exactly-once, without transactions: every window row carries the offsets it
came from and its partition's event-time high-water mark, and one batch is one
INSERT into one unpartitioned table, so it lands whole or not at all. When a
worker is given a partition it reads back how far that partition is written
(``read_progress``) and skips what is already there. The insert also carries
the batch's offsets as ``insert_deduplication_token``, so a retry after an
ambiguous failure (the insert landed, the answer was lost) is dropped by
ClickHouse instead of counted twice. Raw events (request_events, partitioned
by day) go first, in one INSERT per run of days (rows.DAYS_PER_INSERT), each
with its own token: one INSERT over too many partitions is refused for good.

``write`` raises ClickHouseUnavailable when ClickHouse cannot take the batch;
the caller keeps it un-acked and retries, which pauses consumption.
"""

from __future__ import annotations

import logging

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.streams.prometheus.pipeline import PipelineMetrics
from fleetpulse.streams.windows.batch import BatchResult
from fleetpulse.streams.windows.rows import EVENT_COLUMNS, WINDOW_COLUMNS
from fleetpulse.streams.windows.tenants import TENANT_COLUMNS
from fleetpulse.streams.windows.watermark import PartitionProgress

log = logging.getLogger("fleetpulse.worker")

#: Rollup table -> the function that maps a 10 s window to its rollup window.
ROLLUPS = {"request_windows_1m": "toStartOfMinute", "request_windows_1h": "toStartOfHour"}

_PROGRESS_SQL = """
SELECT source_partition, max(offset_last), max(max_event_time)
FROM {table} WHERE source_topic = {{topic:String}} GROUP BY source_partition
"""

# The same mapping as the materialized views (sql/004_rollups.sql; the detail
# maps since 013, the quality counts since 014; the views stopped grouping in
# 018, and these sums are the same); the integration tests
# test_sql.py::test_rollup_catch_up_fills_in_exactly_what_the_views_missed and
# test_rollups.py::test_the_backfill_gives_windows_written_before_it_their_exact_maps
# hold them equal. The columns are named: a rollup's columns are in the order
# they were added in, and a positional INSERT would fail on a change of count.
_CATCH_UP_SQL = """
INSERT INTO {rollup} (window_start, model, node, source_topic, source_partition, requests, errors, late_requests,
                      errors_by_type, input_tokens, output_tokens, latency_sum, latency_buckets, ttft_buckets,
                      tpot_buckets, queue_buckets, input_tokens_buckets, output_tokens_buckets, finish_reasons,
                      outcomes, offset_last, analysed, refusals, empty_outputs, format_checked, format_failures,
                      cache_read_tokens, repetition_buckets)
SELECT {bucket}(window_start) AS window_start, model, node, source_topic, source_partition,
       sum(requests), sum(errors), sumIf(request_windows.requests, late = 1), sumMap(errors_by_type),
       sum(input_tokens), sum(output_tokens), sum(latency_sum), sumMap(latency_buckets),
       sumMap(ttft_buckets), sumMap(tpot_buckets), sumMap(queue_buckets), sumMap(input_tokens_buckets),
       sumMap(output_tokens_buckets), sumMap(finish_reasons), sumMap(outcomes), max(offset_last), sum(analysed),
       sum(refusals), sum(empty_outputs), sum(format_checked), sum(format_failures), sum(cache_read_tokens),
       sumMap(repetition_buckets)
FROM request_windows
WHERE source_topic = {{topic:String}} AND source_partition = {{partition:UInt32}} AND offset_last >= {{start:UInt64}}
GROUP BY window_start, model, node, source_topic, source_partition
"""


class ClickHouseSink:
    def __init__(self, ch: ClickHouse, metrics: PipelineMetrics):
        self._ch = ch
        self._metrics = metrics

    def write(self, batch: BatchResult) -> None:
        # Raw events first: if we die between the two inserts, the batch is
        # replayed and request_events (ReplacingMergeTree on source offsets)
        # collapses the repeat; the other order would lose those events.
        if batch.event_rows:
            self._write_events(batch)
        # Tenant rows before the window rows: a replay skips the messages
        # tenant_windows holds (read_tenant_progress), so neither order of a
        # crash between the two counts a tenant twice or loses it.
        if batch.tenants is not None and len(batch.tenants):
            self._ch.insert_native("tenant_windows", TENANT_COLUMNS, batch.tenant_block(),
                                   dedup_token=f"{batch.source}/tenants")
            self._metrics.rows_written.labels("tenant_windows").inc(len(batch.tenants))
        if len(batch.windows):
            self._ch.insert_native("request_windows", WINDOW_COLUMNS, batch.window_block(), dedup_token=batch.source)
            self._metrics.rows_written.labels("request_windows").inc(len(batch.windows))

    def _write_events(self, batch: BatchResult) -> None:
        """One INSERT per run of at most rows.DAYS_PER_INSERT day partitions.
        A run's token names its days: a replay that cuts the batch the same
        way is dropped run by run, and one cut otherwise (retention dropped
        its oldest events meanwhile) is inserted under new tokens and
        collapses with the first writing in the ReplacingMergeTree."""
        for run in batch.event_runs:
            token = f"{batch.source}/events/{run.days}" if run.days else f"{batch.source}/events"
            self._ch.insert("request_events", batch.event_rows[run.lo:run.hi], EVENT_COLUMNS, dedup_token=token)
        self._metrics.rows_written.labels("request_events").inc(len(batch.event_rows))

    def read_tenant_progress(self, topic: str) -> dict[int, int]:
        """Per partition of ``topic``: the next offset tenant_windows lacks."""
        rows = self._ch.query(_PROGRESS_SQL.format(table="tenant_windows"), parameters={"topic": topic}).result_rows
        return {int(p): int(last) + 1 for p, last, _ in rows}

    def read_progress(self, topic: str) -> dict[int, PartitionProgress]:
        """Per partition of ``topic``: the next offset to write and the event-time high-water mark."""
        rows = self._ch.query(_PROGRESS_SQL.format(table="request_windows"), parameters={"topic": topic}).result_rows
        return {int(p): PartitionProgress(int(last) + 1, float(max_time)) for p, last, max_time in rows}

    def catch_up_rollups(self, topic: str, partitions: list[int]) -> int:
        """Give each rollup every batch the base table has. A crash between the
        base insert and its materialized views can leave a rollup one batch
        behind; only the partition's owner calls this, before writing to it."""
        base = self.read_progress(topic)
        repaired = 0
        for rollup, bucket in ROLLUPS.items():
            have = self._rollup_offsets(rollup, topic)
            for partition in partitions:
                if partition not in base or have.get(partition, -1) >= base[partition].next_offset - 1:
                    continue
                log.warning("rollup %s is behind on %s:%d (has offset %s, base %d); filling in",
                            rollup, topic, partition, have.get(partition), base[partition].next_offset - 1)
                start = have.get(partition, -1) + 1  # first offset the rollup lacks
                self._ch.command(_CATCH_UP_SQL.format(rollup=rollup, bucket=bucket),
                                 parameters={"topic": topic, "partition": partition, "start": start})
                repaired += 1
        return repaired

    def _rollup_offsets(self, rollup: str, topic: str) -> dict[int, int]:
        sql = f"SELECT source_partition, max(offset_last) FROM {rollup} WHERE source_topic = {{topic:String}} GROUP BY source_partition"
        return {int(p): int(o) for p, o in self._ch.query(sql, parameters={"topic": topic}).result_rows}
