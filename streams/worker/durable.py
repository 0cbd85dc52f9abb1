"""Durable, then ack: the one retry loop both agents write through.

Order matters for the guarantees: dead letters first, then ClickHouse, and
only then does the caller ack the messages (the requests consumer stores
their offsets, streams/worker/consumer.py; the GPU agent acks them,
streams/worker/app.py). A crash anywhere before that means the messages are
consumed again; the request rows ClickHouse already has are skipped by their
offsets, the GPU samples collapse on their key. Dead letters are
at-least-once: a batch consumed again after a crash sends its dead letters
again (the ``fleetpulse.source`` header tells duplicates apart).

Everything that touches chDB runs on one thread (writes of both agents and the
timers' evaluations), strictly ordered, so the event loop stays free for
Kafka heartbeats and the web server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from fleetpulse.errors import ClickHouseUnavailable, KafkaUnavailable
from fleetpulse.streams.prometheus.pipeline import PipelineMetrics
from fleetpulse.streams.windows.batch import SourcedDeadLetter
from fleetpulse.streams.worker.deadletter import DeadLetterSink
from fleetpulse.streams.worker.stall import StallWatch
from fleetpulse.streams.worker.threadnames import name_os_thread

log = logging.getLogger("fleetpulse.worker")

MAX_BACKOFF_S = 30.0


class Durable:
    def __init__(self, dead_letters: DeadLetterSink | None, metrics: PipelineMetrics):
        self.dead_letters = dead_letters
        self._metrics = metrics
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="fleetpulse-sink", initializer=name_os_thread)
        self.stalls = StallWatch()  # read by /health
        self._stopping = asyncio.Event()  # set by stop(): no more retries

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def until_done(self, sink: str, call: Callable[..., Any], *args: Any) -> Any:
        """Run ``call`` on the sink's thread, retrying with capped exponential
        backoff while ``sink`` is unavailable. While we wait, nothing is acked
        and no more batches are taken: the requests consumer pauses its
        partitions once its two slots are full (streams/worker/consumer.py),
        the GPU agent's bounded faust buffers fill, so memory stays bounded and
        the backlog waits in Kafka. (faust's own pause is not used for the GPU
        topic: it drops what it had fetched and, on resume, does not read it
        again, which would lose those messages.) Any other error is raised:
        no retry fixes it."""
        loop = asyncio.get_running_loop()
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

    async def write_dead_letters(self, letters: list[SourcedDeadLetter]) -> None:
        """Durably, or logged and counted where the broker refuses one for good."""
        if letters:
            await self.until_done("deadletter", self._write_dead_letters, letters)

    def _write_dead_letters(self, letters: list[SourcedDeadLetter]) -> None:
        for item in self.dead_letters.write(letters):
            log.error("dead-letter topic refused %s:%d:%d (%s); skipped",
                      item.topic, item.partition, item.offset, item.letter.reason)
            self._metrics.events_dropped.labels(item.topic).inc()

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
        is back. Called from the event loop."""
        self._stopping.set()

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        if self.dead_letters is not None:
            self.dead_letters.close()
