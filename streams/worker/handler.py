"""Make one batch of request messages durable (streams/worker/durable.py has
the order and the retry loop), and keep how far each partition is written.

The ones ClickHouse already has are skipped by their offsets (``progress``,
restored from ClickHouse whenever a partition is assigned).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

import numpy as np

from fleetpulse.settings import Settings
from fleetpulse.streams.prometheus.pipeline import PipelineMetrics
from fleetpulse.streams.prometheus.requests import RequestExporter
from fleetpulse.streams.prometheus.tenants import TenantTopK
from fleetpulse.streams.windows.batch import (BatchResult, MessageBatch, RawMessage, Retention, TopicPartition, byte_runs,
                                              process_batch)
from fleetpulse.streams.windows.merge import merge_results
from fleetpulse.streams.windows.sink import ClickHouseSink
from fleetpulse.streams.windows.watermark import PartitionProgress
from fleetpulse.streams.worker.durable import Durable
from fleetpulse.streams.worker.threadnames import name_os_thread

log = logging.getLogger("fleetpulse.worker")

#: Runs of one handover are written together until their window rows reach
#: this: an insert costs chDB ~60 ms however few its rows, while one of many
#: rows (a high-cardinality fleet) costs by its rows, and its memory grows with them.
WRITE_ROWS = 20_000


class RequestBatchHandler:
    def __init__(self, settings: Settings, durable: Durable, sink: ClickHouseSink, metrics: PipelineMetrics,
                 exporter: RequestExporter, tenants: TenantTopK | None = None):
        self._exporter = exporter
        self._tenants = tenants
        self._settings = settings
        self.durable = durable
        self._sink = sink
        self._metrics = metrics
        # Batch math runs on a thread of its own, so a batch is decoded and
        # aggregated while the one before is written (chDB releases the GIL
        # while it inserts) on the durable's thread.
        self._math = ThreadPoolExecutor(1, thread_name_prefix="fleetpulse-math", initializer=name_os_thread)
        self.progress: dict[TopicPartition, PartitionProgress] = {}  # durable
        self._ahead: dict[TopicPartition, PartitionProgress] = {}  # processed, being written
        self._tenant_floor: dict[TopicPartition, int] = {}  # next offset tenant_windows lacks, when assigned
        self._writing: asyncio.Future | None = None
        self._assigned: set[TopicPartition] = set()
        self._summary = _Summary()
        # Held from taking a batch until its messages are acked, and by a
        # revocation: no batch of a partition can be written after we gave it up.
        self.lock = asyncio.Lock()

    async def on_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        """Restore how far each newly assigned partition is already written.

        Runs inside the rebalance, after the previous owner finished its
        in-flight batch (faust waits for every started message to be acked
        before it gives a partition up), so what ClickHouse says is final.
        """
        assigned = set(assigned)
        new = assigned - self._assigned
        self._assigned = assigned
        by_topic: dict[str, list[int]] = {}
        for topic, partition in new:
            by_topic.setdefault(topic, []).append(partition)
        for topic, partitions in by_topic.items():
            with self.durable.stalls.working("partition assignment", "for what ClickHouse holds"):
                stored = await self.durable.until_done("clickhouse", self._restore, topic, sorted(partitions))
            for partition in partitions:
                self.progress[(topic, partition)] = stored.get(partition, PartitionProgress())
            log.info("assigned %s partitions %s; resuming after %s", topic, sorted(partitions),
                     {p: stored[p].next_offset - 1 for p in sorted(stored) if p in partitions} or "nothing written")

    def _restore(self, topic: str, partitions: list[int]) -> dict[int, PartitionProgress]:
        repaired = self._sink.catch_up_rollups(topic, partitions)
        if repaired:
            self._metrics.rollup_repairs.inc(repaired)
        tenants = self._sink.read_tenant_progress(topic)
        self._tenant_floor.update({(topic, p): tenants[p] for p in partitions if p in tenants})
        return self._sink.read_progress(topic)

    def on_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        for tp in revoked:
            self.progress.pop(tp, None)
            self._ahead.pop(tp, None)
            self._tenant_floor.pop(tp, None)
            self._assigned.discard(tp)

    async def handle(self, messages: MessageBatch, on_durable: Callable[[], None],
                     on_fatal: Callable[[MessageBatch], None]) -> None:
        """Process ``messages`` and start writing them. At most one write is in
        flight: it overlaps the processing of the next batch, which starts from
        the progress the one before will have once written. ``on_durable`` runs
        when every message of the batch is written; ``on_fatal`` when a write
        fails in a way no retry can fix."""
        # Messages of partitions we no longer own are left to their new owner.
        owned = messages.take(np.isin(messages.partitions, self.owned_partitions(messages.topic)))
        chunks = owned.split(self._settings.batch_max_bytes) if len(owned) else []
        # Decoded run by run (memory), and the runs' window rows written in one
        # insert (chDB's cost per insert is mostly fixed: merge.merge_results)
        # until they reach WRITE_ROWS; with raw events, one write per run, as
        # their inserts are cut by day.
        loop = asyncio.get_running_loop()
        ends = np.cumsum([len(c) for c in chunks]).tolist()  # each run's end in ``owned``
        parts: list[BatchResult] = []
        started, first = time.perf_counter(), 0
        for k, run in enumerate(chunks):
            if self.durable.stopping:
                return  # un-acked: read again after the restart
            with self.durable.stalls.working("request batch"):
                part = await loop.run_in_executor(self._math, self._process, run)
            self._ahead.update(part.progress)
            parts.append(part)
            last = k == len(chunks) - 1
            if not (last or self._settings.store_raw_events or sum(len(p.windows) for p in parts) >= WRITE_ROWS):
                continue
            batch, written = merge_results(parts), owned.slice(ends[first - 1] if first else 0, ends[k])
            parts, first = [], k + 1
            await self.flush()
            self._writing = asyncio.ensure_future(self._write(batch, written, started, on_durable if last else None))
            self._writing.add_done_callback(lambda task, written=written: _fatal_if_failed(task, written, on_fatal))
            started = time.perf_counter()
        if not chunks:
            await self.flush()
            on_durable()

    async def flush(self) -> None:
        """Wait for the write in flight, if any (its failure is on_fatal's)."""
        writing, self._writing = self._writing, None
        if writing is not None:
            await asyncio.wait([writing])

    def owned_partitions(self, topic: str) -> list[int]:
        return [p for t, p in self._assigned if t == topic]

    async def _write(self, batch: BatchResult, messages: MessageBatch, started: float,
                     on_durable: Callable[[], None] | None) -> None:
        with self.durable.stalls.working("request batch"):
            await self.durable.write_dead_letters(batch.dead)
            await self.durable.until_done("clickhouse", self._sink.write, batch)
        self.progress.update(batch.progress)
        for tp, done in batch.progress.items():
            if self._ahead.get(tp) == done:
                del self._ahead[tp]  # nothing newer is being written
        for columns in batch.columns:
            self._exporter.observe(columns)
        if self._tenants is not None:
            self._tenants.observe(batch.tenants)
        self._record(batch, messages, time.perf_counter() - started)
        if on_durable is not None:
            on_durable()

    def _process(self, messages: MessageBatch) -> BatchResult:
        s = self._settings
        return process_batch(messages, {**self.progress, **self._ahead}, window_seconds=s.window_seconds,
                             lateness=s.allowed_lateness_seconds, max_bytes=s.max_message_bytes,
                             keep_events=s.store_raw_events, retention=Retention.now(s),
                             tenant_floor=dict(self._tenant_floor))

    def _record(self, batch: BatchResult, messages: MessageBatch, elapsed: float) -> None:
        m = self._metrics
        topic = messages.topic
        m.batches.labels(topic).inc()
        m.messages_in.labels(topic).inc(batch.messages)
        m.messages_skipped.labels(topic).inc(batch.skipped)
        m.events_in.labels(topic).inc(batch.events)
        m.late_events.labels(topic).inc(batch.late_events)
        m.flush_seconds.labels(topic).observe(elapsed)
        for item in batch.dead:
            m.events_invalid.labels(item.topic, invalid_field(item.letter.reason)).inc()
        for (t, p), progress in batch.progress.items():
            if progress.max_event_time > float("-inf"):
                m.event_time_high_water.labels(t, str(p)).set(progress.max_event_time)
        self._summary.add(batch)

    def close(self) -> None:
        self._math.shutdown(wait=True)
        self.durable.close()


def _fatal_if_failed(task: asyncio.Future, messages: MessageBatch, on_fatal: Callable[[MessageBatch], None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        try:
            raise task.exception()
        except Exception:  # noqa: BLE001 -- on_fatal logs it with its traceback, then exits
            on_fatal(messages)


def split_by_bytes(messages: list[RawMessage], limit: int) -> list[list[RawMessage]]:
    """Contiguous runs of at most ``limit`` bytes (batch.byte_runs)."""
    sizes = np.array([len(m.value or b"") for m in messages], dtype=np.int64)
    return [messages[lo:hi] for lo, hi in byte_runs(sizes, limit)] or [[]]


def invalid_field(reason: str) -> str:
    """The schema field a reason names, without the event index: a bounded label."""
    return _EVENT_INDEX.sub("", reason.split(":", 1)[0])


_EVENT_INDEX = re.compile(r"^events\[\d+\]\.")


class _Summary:
    """A progress line every 10 s, so a person watching the worker sees it work."""

    EVERY_S = 10.0

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._since = time.monotonic()
        self._events = self._rows = self._dead = self._late = 0

    def add(self, batch: BatchResult) -> None:
        self._events += batch.events
        self._rows += len(batch.windows)
        self._dead += len(batch.dead)
        self._late += batch.late_events
        elapsed = time.monotonic() - self._since
        if elapsed >= self.EVERY_S:
            log.info("processed %d events (%.0f/s), wrote %d window rows, %d late, %d dead letters in the last %.0fs",
                     self._events, self._events / elapsed, self._rows, self._late, self._dead, elapsed)
            self._reset()
