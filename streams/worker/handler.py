"""Make one batch of request messages durable, retrying until it is.

Order matters for the guarantees: dead letters first, then ClickHouse, and
only then does the caller ack the messages (stores their offsets: the requests
consumer, streams/worker/consumer.py; acks them: the GPU agent). A crash anywhere
before that means the messages are consumed again; the ones ClickHouse already has are
skipped by their offsets (``progress``, restored from ClickHouse whenever a
partition is assigned). Dead letters are at-least-once: a batch consumed again
after a crash sends its dead letters again (the ``fleetpulse.source`` header
tells duplicates apart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

import numpy as np

from fleetpulse.errors import ClickHouseUnavailable, KafkaUnavailable
from fleetpulse.settings import Settings
from fleetpulse.streams.windows.batch import (BatchResult, MessageBatch, RawMessage, Retention, TopicPartition, byte_runs,
                                     process_batch)
from fleetpulse.streams.worker.deadletter import DeadLetterSink, SourcedDeadLetter
from fleetpulse.streams.prometheus.requests import RequestExporter
from fleetpulse.streams.prometheus.pipeline import PipelineMetrics
from fleetpulse.streams.windows.sink import ClickHouseSink
from fleetpulse.streams.worker.stall import StallWatch
from fleetpulse.streams.windows.watermark import PartitionProgress

log = logging.getLogger("fleetpulse.worker")

MAX_BACKOFF_S = 30.0


class RequestBatchHandler:
    def __init__(self, settings: Settings, sink: ClickHouseSink, dead_letters: DeadLetterSink,
                 metrics: PipelineMetrics, exporter: RequestExporter):
        self._exporter = exporter
        self._settings = settings
        self._sink = sink
        self.dead_letters = dead_letters
        self._metrics = metrics
        # One thread for everything that touches chDB (writes, the timers'
        # evaluations): strictly ordered, and the event loop stays free for
        # Kafka heartbeats and the web server. Batch math runs on a second
        # thread, so a batch is decoded and aggregated while the one before is
        # written (chDB releases the GIL while it inserts).
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="fleetpulse-sink")
        self._math = ThreadPoolExecutor(1, thread_name_prefix="fleetpulse-math")
        self.progress: dict[TopicPartition, PartitionProgress] = {}  # durable
        self._ahead: dict[TopicPartition, PartitionProgress] = {}  # processed, being written
        self._writing: asyncio.Future | None = None
        self._assigned: set[TopicPartition] = set()
        self._summary = _Summary()
        self.stalls = StallWatch()  # read by /health
        # Held from taking a batch until its messages are acked, and by a
        # revocation: no batch of a partition can be written after we gave it up.
        self.lock = asyncio.Lock()
        self._stopping = asyncio.Event()  # set by stop(): no more retries, no more batches

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
        loop = asyncio.get_running_loop()
        for topic, partitions in by_topic.items():
            with self.stalls.working("partition assignment", "for what ClickHouse holds"):
                stored = await self.until_done(loop, self._restore, "clickhouse", topic, sorted(partitions))
            for partition in partitions:
                self.progress[(topic, partition)] = stored.get(partition, PartitionProgress())
            log.info("assigned %s partitions %s; resuming after %s", topic, sorted(partitions),
                     {p: stored[p].next_offset - 1 for p in sorted(stored) if p in partitions} or "nothing written")

    def _restore(self, topic: str, partitions: list[int]) -> dict[int, PartitionProgress]:
        repaired = self._sink.catch_up_rollups(topic, partitions)
        if repaired:
            self._metrics.rollup_repairs.inc(repaired)
        return self._sink.read_progress(topic)

    def on_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        for tp in revoked:
            self.progress.pop(tp, None)
            self._ahead.pop(tp, None)
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
        loop = asyncio.get_running_loop()
        for k, chunk in enumerate(chunks):
            if self._stopping.is_set():
                return  # un-acked: read again after the restart
            started = time.perf_counter()
            with self.stalls.working("request batch"):
                batch = await loop.run_in_executor(self._math, self._process, chunk)
            self._ahead.update(batch.progress)
            await self.flush()
            last = k == len(chunks) - 1
            self._writing = asyncio.ensure_future(self._write(batch, chunk, started, on_durable if last else None))
            self._writing.add_done_callback(lambda task, chunk=chunk: _fatal_if_failed(task, chunk, on_fatal))
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
        loop = asyncio.get_running_loop()
        with self.stalls.working("request batch"):
            await self.until_done(loop, self.write_dead_letters, "deadletter", batch.dead)
            await self.until_done(loop, self._sink.write, "clickhouse", batch)
        self.progress.update(batch.progress)
        for tp, done in batch.progress.items():
            if self._ahead.get(tp) == done:
                del self._ahead[tp]  # nothing newer is being written
        self._exporter.observe(batch.columns)
        self._record(batch, messages, time.perf_counter() - started)
        if on_durable is not None:
            on_durable()

    def _process(self, messages: MessageBatch) -> BatchResult:
        s = self._settings
        return process_batch(messages, {**self.progress, **self._ahead}, window_seconds=s.window_seconds,
                             lateness=s.allowed_lateness_seconds, max_bytes=s.max_message_bytes,
                             keep_events=s.store_raw_events, retention=Retention.now(s))

    def write_dead_letters(self, letters: list[SourcedDeadLetter]) -> None:
        """Durably, or logged and counted where the broker refuses one for good."""
        if not letters:
            return
        refused = self.dead_letters.write(letters)
        for item in refused:
            log.error("dead-letter topic refused %s:%d:%d (%s); skipped",
                      item.topic, item.partition, item.offset, item.letter.reason)
            self._metrics.events_dropped.labels(item.topic).inc()

    async def until_done(self, loop, call, sink: str, *args):
        """Retry with capped exponential backoff. While we wait, nothing is acked
        and no more batches are taken: the requests consumer pauses its
        partitions once its two slots are full (streams/worker/consumer.py), the GPU
        agent's bounded faust buffers fill, so memory stays bounded and the
        backlog waits in Kafka. (faust's own pause is not used for the GPU
        topic: it drops what it had fetched and, on resume, does not read it
        again, which would lose those messages.)"""
        delay, paused = 0.5, False
        try:
            while True:
                try:
                    result = await loop.run_in_executor(self.executor, call, *args)
                except (ClickHouseUnavailable, KafkaUnavailable) as exc:
                    self.stalls.failed(f"{sink}: {exc}")
                    if not paused:
                        paused = True
                        self._metrics.paused.set(1)
                    self._metrics.sink_retries.labels(sink).inc()
                    log.warning("%s unavailable, consumption paused, retrying in %.1fs: %s", sink, delay, exc)
                    await self._back_off(delay)
                    delay = min(delay * 2, MAX_BACKOFF_S)
                    continue
                if paused:  # not when the wait ends otherwise (stopping, an error no retry fixes)
                    log.info("%s is back; consumption resumed", sink)
                return result
        finally:
            if paused:
                self._metrics.paused.set(0)

    async def _back_off(self, delay: float) -> None:
        """Wait ``delay`` seconds before the next try; when the worker stops
        meanwhile, give the batch up as cancelled (not failed: that would be
        fatal), un-acked, so the next worker writes it."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
        if self._stopping.is_set():
            log.warning("stopping while a batch waits to be written; its messages will be read again")
            raise asyncio.CancelledError("the worker is stopping")

    def stop(self) -> None:
        """SIGTERM: a batch being retried is given up at once (a supervisor
        restarts the worker) instead of holding the shutdown until ClickHouse
        is back; nothing more is taken. Called from the event loop."""
        self._stopping.set()

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
        self.executor.shutdown(wait=True)
        self.dead_letters.close()


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
