"""Write GPU sample batches: dead letters first, then the rows, then the windows
they arrived late for; only then does the caller ack."""

from __future__ import annotations

import asyncio

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.settings import Settings
from fleetpulse.streams.windows.batch import MessageBatch, RawMessage, Retention, source_of
from fleetpulse.streams.gpu.samples import COLUMNS, gpu_rows
from fleetpulse.streams.gpu.windows import GpuWindowWriter
from fleetpulse.streams.worker.handler import RequestBatchHandler, invalid_field, split_by_bytes
from fleetpulse.streams.prometheus.pipeline import PipelineMetrics


class GpuWriter:
    def __init__(self, settings: Settings, ch: ClickHouse, handler: RequestBatchHandler, metrics: PipelineMetrics,
                 windows: GpuWindowWriter):
        self._s = settings
        self._ch = ch
        self._handler = handler  # shares its thread, its retry loop and its dead-letter sink
        self._metrics = metrics
        self._windows = windows

    async def write(self, messages: list[RawMessage]) -> None:
        for chunk in split_by_bytes(messages, self._s.batch_max_bytes):
            with self._handler.stalls.working("GPU batch"):
                await self._write_chunk(chunk)

    async def _write_chunk(self, messages: list[RawMessage]) -> None:
        s = self._s
        topic = messages[0].topic
        rows, letters = gpu_rows(messages, s.max_message_bytes, Retention.now(s), s.window_seconds)
        loop = asyncio.get_running_loop()
        if letters:
            await self._handler.until_done(loop, self._handler.write_dead_letters, "deadletter", letters)
        late = 0
        if rows:
            await self._handler.until_done(loop, self._ch.insert, "clickhouse", "gpu_samples", rows, COLUMNS,
                                           source_of(MessageBatch.of(messages).spans()))
            late = await self._handler.until_done(loop, self._windows.rewrite_late, "clickhouse", rows)
        m = self._metrics
        m.messages_in.labels(topic).inc(len(messages))
        m.events_in.labels(topic).inc(len(rows))
        m.late_events.labels(topic).inc(late)
        m.batches.labels(topic).inc()
        for item in letters:
            m.events_invalid.labels(topic, invalid_field(item.letter.reason)).inc()
