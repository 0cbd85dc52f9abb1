"""Make one batch of GPU samples durable: dead letters first, then the rows,
then the windows they arrived late for; only then does the GPU agent ack.
The same retry loop and thread as the request batches (streams/worker/durable.py)."""

from __future__ import annotations

from fleetpulse.clickhouse import ClickHouse
from fleetpulse.settings import Settings
from fleetpulse.streams.gpu.samples import COLUMNS, gpu_rows
from fleetpulse.streams.gpu.windows import GpuWindowWriter
from fleetpulse.streams.prometheus.pipeline import PipelineMetrics
from fleetpulse.streams.windows.batch import MessageBatch, RawMessage, Retention, source_of
from fleetpulse.streams.worker.durable import Durable
from fleetpulse.streams.worker.handler import invalid_field, split_by_bytes


class GpuBatchWriter:
    def __init__(self, settings: Settings, ch: ClickHouse, durable: Durable, metrics: PipelineMetrics,
                 windows: GpuWindowWriter):
        self._s = settings
        self._ch = ch
        self._durable = durable
        self._metrics = metrics
        self._windows = windows

    async def write(self, messages: list[RawMessage]) -> None:
        for chunk in split_by_bytes(messages, self._s.batch_max_bytes):
            with self._durable.stalls.working("GPU batch"):
                await self._write_chunk(chunk)

    async def _write_chunk(self, messages: list[RawMessage]) -> None:
        s = self._s
        topic = messages[0].topic
        rows, letters = gpu_rows(messages, s.max_message_bytes, Retention.now(s), s.window_seconds)
        await self._durable.write_dead_letters(letters)
        late = 0
        if rows:
            await self._durable.until_done("clickhouse", self._ch.insert, "gpu_samples", rows, COLUMNS,
                                           source_of(MessageBatch.of(messages).spans()))
            late = await self._durable.until_done("clickhouse", self._windows.rewrite_late, rows)
        m = self._metrics
        m.messages_in.labels(topic).inc(len(messages))
        m.events_in.labels(topic).inc(len(rows))
        m.late_events.labels(topic).inc(late)
        m.batches.labels(topic).inc()
        for item in letters:
            m.events_invalid.labels(topic, invalid_field(item.letter.reason)).inc()
