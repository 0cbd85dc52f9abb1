"""Write GPU sample batches: dead letters first, then the rows; then the caller acks."""

from __future__ import annotations

import asyncio

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.settings import Settings
from fleetpulse.streams.batch import RawMessage, offset_spans, source_of
from fleetpulse.streams.gpu import COLUMNS, gpu_rows
from fleetpulse.streams.handler import RequestBatchHandler, invalid_field
from fleetpulse.streams.metrics import PipelineMetrics


class GpuWriter:
    def __init__(self, settings: Settings, ch: ClickHouse, handler: RequestBatchHandler, metrics: PipelineMetrics):
        self._s = settings
        self._ch = ch
        self._handler = handler  # shares its thread, its retry loop and its dead-letter sink
        self._metrics = metrics

    async def write(self, messages: list[RawMessage]) -> None:
        if not messages:
            return
        topic = messages[0].topic
        rows, letters = gpu_rows(messages, self._s.max_message_bytes)
        loop = asyncio.get_running_loop()
        if letters:
            await self._handler.until_done(loop, self._handler.write_dead_letters, "deadletter", letters)
        if rows:
            await self._handler.until_done(loop, self._ch.insert, "clickhouse", "gpu_samples", rows, COLUMNS,
                                           source_of(offset_spans(messages)))
        m = self._metrics
        m.messages_in.labels(topic).inc(len(messages))
        m.events_in.labels(topic).inc(len(rows))
        m.batches.labels(topic).inc()
        for item in letters:
            m.events_invalid.labels(topic, invalid_field(item.letter.reason)).inc()
