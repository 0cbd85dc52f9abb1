"""Make one batch of request messages durable, retrying until it is.

Order matters for the guarantees: dead letters first, then ClickHouse, and
only then does the caller ack the messages. A crash anywhere before the ack
means the batch is consumed again; ClickHouse drops the repeated insert by its
deduplication token. Dead letters are at-least-once: a batch consumed again
after a crash sends its dead letters again (the ``fleetpulse.source`` header
tells duplicates apart).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor

from fleetpulse.errors import ClickHouseUnavailable, KafkaUnavailable
from fleetpulse.settings import Settings
from fleetpulse.streams.batch import BatchResult, RawMessage, process_batch
from fleetpulse.streams.deadletter import DeadLetterSink
from fleetpulse.streams.metrics import PipelineMetrics
from fleetpulse.streams.sink import ClickHouseSink

log = logging.getLogger("fleetpulse.worker")

MAX_BACKOFF_S = 30.0


class RequestBatchHandler:
    def __init__(self, settings: Settings, sink: ClickHouseSink, dead_letters: DeadLetterSink,
                 metrics: PipelineMetrics):
        self._settings = settings
        self._sink = sink
        self._dead_letters = dead_letters
        self._metrics = metrics
        # One thread: batch math and chDB writes leave the event loop free for
        # Kafka heartbeats and the web server, and stay strictly ordered.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="fleetpulse-sink")
        self.next_offsets: dict[tuple[str, int], int] = {}
        self._summary = _Summary()

    async def handle(self, messages: list[RawMessage]) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        batch = await loop.run_in_executor(self._executor, self._process, messages)
        await self._until_durable(loop, self._write_dead_letters, batch, "deadletter")
        await self._until_durable(loop, self._sink.write, batch, "clickhouse")
        self._record(batch, messages, time.perf_counter() - started)

    def _process(self, messages: list[RawMessage]) -> BatchResult:
        s = self._settings
        return process_batch(messages, window_seconds=s.window_seconds, max_bytes=s.max_message_bytes,
                             keep_events=s.store_raw_events)

    def _write_dead_letters(self, batch: BatchResult) -> None:
        if not batch.dead:
            return
        refused = self._dead_letters.write(batch.dead)
        for item in refused:
            log.error("dead-letter topic refused %s:%d:%d (%s); skipped",
                      item.topic, item.partition, item.offset, item.letter.reason)
            self._metrics.events_dropped.labels(item.topic).inc()

    async def _until_durable(self, loop, write, batch: BatchResult, sink: str) -> None:
        """Retry with capped exponential backoff. While we wait here nothing is
        acked and the take buffer stays full, so consumption pauses."""
        delay = 0.5
        while True:
            try:
                await loop.run_in_executor(self._executor, write, batch)
                return
            except (ClickHouseUnavailable, KafkaUnavailable) as exc:
                self._metrics.sink_retries.labels(sink).inc()
                log.warning("%s unavailable, pausing consumption and retrying in %.1fs: %s", sink, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)

    def _record(self, batch: BatchResult, messages: list[RawMessage], elapsed: float) -> None:
        m = self._metrics
        topic = messages[0].topic
        m.batches.labels(topic).inc()
        m.messages_in.labels(topic).inc(batch.messages)
        m.events_in.labels(topic).inc(batch.events)
        m.flush_seconds.labels(topic).observe(elapsed)
        for item in batch.dead:
            m.events_invalid.labels(item.topic, invalid_field(item.letter.reason)).inc()
        for msg in messages:
            key = (msg.topic, msg.partition)
            self.next_offsets[key] = max(self.next_offsets.get(key, 0), msg.offset + 1)
        self._summary.add(batch)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._dead_letters.close()


def invalid_field(reason: str) -> str:
    """The schema field a reason names, without the event index: a bounded label."""
    return _EVENT_INDEX.sub("", reason.split(":", 1)[0])


_EVENT_INDEX = re.compile(r"^events\[\d+\]\.")


class _Summary:
    """A progress line every 10 s, so a person watching the worker sees it work."""

    EVERY_S = 10.0

    def __init__(self) -> None:
        self._since = time.monotonic()
        self._events = self._rows = self._dead = 0

    def add(self, batch: BatchResult) -> None:
        self._events += batch.events
        self._rows += len(batch.window_rows)
        self._dead += len(batch.dead)
        elapsed = time.monotonic() - self._since
        if elapsed >= self.EVERY_S:
            log.info("processed %d events (%.0f/s), wrote %d window rows, %d dead letters in the last %.0fs",
                     self._events, self._events / elapsed, self._rows, self._dead, elapsed)
            self.__init__()
