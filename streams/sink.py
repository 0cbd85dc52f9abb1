"""The ClickHouse sink: one ``write(batch)``; backpressure is a typed exception.

``write`` raises ClickHouseUnavailable when ClickHouse cannot take the batch
right now; the caller keeps the batch un-acked and retries, which pauses
consumption. Inserts carry the batch's source offsets as the deduplication
token, so a retry after an ambiguous failure never counts twice.
"""

from __future__ import annotations

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.streams.batch import BatchResult
from fleetpulse.streams.metrics import PipelineMetrics
from fleetpulse.streams.rows import EVENT_COLUMNS, WINDOW_COLUMNS


class ClickHouseSink:
    def __init__(self, ch: ClickHouse, metrics: PipelineMetrics):
        self._ch = ch
        self._metrics = metrics

    def write(self, batch: BatchResult) -> None:
        if batch.window_rows:
            self._ch.insert("request_windows", batch.window_rows, WINDOW_COLUMNS, dedup_token=batch.source)
            self._metrics.rows_written.labels("request_windows").inc(len(batch.window_rows))
        if batch.event_rows:
            self._ch.insert("request_events", batch.event_rows, EVENT_COLUMNS,
                            dedup_token=f"{batch.source}/events")
            self._metrics.rows_written.labels("request_events").inc(len(batch.event_rows))
