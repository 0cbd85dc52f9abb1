"""The requests topic, consumed in whole batches by librdkafka.

faust's per-message path (aiokafka record -> Message -> Event -> stream ->
take buffer) costs about 250 µs per Kafka message, which single-event
producers pay per event. Here a confluent-kafka consumer on a thread of its
own fills each batch up to RUNS_PER_BATCH x FLEETPULSE_BATCH_MAX_BYTES
(librdkafka.handover_bytes) or FLEETPULSE_BATCH_MAX_MESSAGES with a few
consume() calls (librdkafka.BatchFiller) and turns it into columns with
C-level ``map`` (no Python per message). Each batch crosses
to the event loop through one of two slots, where a service of the faust app
writes it (streams/worker/handler.py): faust's cost is paid per batch. faust still runs the
app: this service, the GPU agent, the timers, the web server.

Exactly once, as before: ClickHouse holds how far each partition is written.
On assignment a partition starts at that offset (or at Kafka's committed one,
whichever is further), and anything older is skipped again by offset. On
revocation the batch in flight finishes first (the handler's lock), then the
offsets of what is durable are committed, and batches still queued for the
old assignment are dropped (their messages are read again by whoever owns the
partition next). Offsets are stored only after a batch is durable.

Backpressure: when no slot frees up for 5 s (a batch waits on ClickHouse), the
consumer pauses its partitions and keeps polling, so the group keeps it as a
member and librdkafka fetches nothing; prefetched memory is bounded by
``queued.max.messages.kbytes``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import itertools
import logging
import threading
import time
from typing import Callable

import numpy as np
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from mode import Service

from fleetpulse.settings import Settings
from fleetpulse.streams.windows.batch import MessageBatch
from fleetpulse.streams.worker.handler import RequestBatchHandler
from fleetpulse.streams.worker.librdkafka import BatchFiller, consumer_config, handover_bytes, to_batch
from fleetpulse.streams.worker.threadnames import give_back_free_heap, name_os_thread

log = logging.getLogger("fleetpulse.worker")

POLL_S = 0.2
HIGHWATER_EVERY_S = 1.0
#: Batches consumed ahead of the one being written: reading overlaps writing.
SLOTS = 2
#: Waiting this long for a slot (ClickHouse is slow or away) pauses the partitions.
#: Not at once: a resume drops librdkafka's prefetch, and a busy worker waits briefly all the time.
PAUSE_AFTER_S = 5.0


class RequestFeed(Service):
    """Consumes the requests topic on a thread and writes each batch on the loop."""

    settings: Settings
    handler: RequestBatchHandler
    on_fatal: Callable[[MessageBatch], None]
    instance: "RequestFeed | None" = None  # the one faust started, for the lag gauge

    @classmethod
    def bound(cls, settings: Settings, handler: RequestBatchHandler,
              on_fatal: Callable[[MessageBatch], None]) -> type["RequestFeed"]:
        """The class faust's ``app.service`` instantiates, with its dependencies."""
        return type(cls.__name__, (cls,), {"settings": settings, "handler": handler,
                                           "on_fatal": staticmethod(on_fatal)})

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.topic = self.settings.topic("requests")
        self._slot = threading.Semaphore(SLOTS)
        self._queue: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._generation = 0  # bumped by every revocation: older batches are stale
        self._highwater: dict[tuple[str, int], int] = {}
        # Offsets of durable batches, stored by the consumer thread: librdkafka
        # calls from the loop thread while consume() runs were seen to deadlock.
        self._done: collections.deque[list[TopicPartition]] = collections.deque()
        self._consumer: Consumer | None = None
        type(self).instance = self

    async def on_start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._consumer = Consumer(consumer_config(self.settings))
        self._consumer.subscribe([self.topic], on_assign=self._assigned, on_revoke=self._revoked,
                                 on_lost=self._lost)
        self._thread = threading.Thread(target=self._consume, name="fleetpulse-consumer", daemon=True)
        self._thread.start()

    async def on_stop(self) -> None:
        self._stopping.set()
        self.handler.durable.stop()  # first: the consumer thread's revocation waits for the batch in flight
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 60)

    @Service.task
    async def _drain(self) -> None:
        while not self.should_stop:
            generation, batch = await self._queue.get()
            try:
                async with self.handler.lock:
                    if generation != self._generation:
                        self._slot.release()  # stale: its messages are read again by their owner
                        continue
                    await self.handler.handle(batch, functools.partial(self._durable, batch), self.on_fatal)
            except Exception:  # noqa: BLE001 -- anything not retried is fatal
                self.on_fatal(batch)
            del batch  # not held while waiting for the next: an idle worker keeps no batch's bytes

    def _durable(self, batch: MessageBatch) -> None:
        """The whole batch is written: its offsets may be committed, its slot reused.
        With nothing else queued, the worker is idle: the heap's free pages go back."""
        self._done.append(self._offsets(batch))
        self._slot.release()
        if self._queue.empty():  # after the write's frames let go of the batch
            self._loop.call_soon(self._give_back_if_idle)

    def _give_back_if_idle(self) -> None:
        if self._queue.empty():
            self._loop.run_in_executor(None, give_back_free_heap)

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages not yet written, per partition: the last high-water mark the
        consumer saw minus how far ClickHouse holds."""
        lag = {}
        for tp, highwater in list(self._highwater.items()):
            done = self.handler.progress.get(tp)
            if done is not None and highwater >= 0:
                lag[tp] = max(0, highwater - done.next_offset)
        return lag

    # --- the consumer thread -------------------------------------------------------------

    def _consume(self) -> None:
        name_os_thread()
        consumer, paused, seen, waiting_since = self._consumer, False, 0.0, None
        s = self.settings
        filler = BatchFiller(handover_bytes(s), s.batch_max_messages, s.batch_max_wait_seconds,
                             s.max_message_bytes)
        try:
            while not self._stopping.is_set():
                if not self._slot.acquire(timeout=POLL_S):
                    # The loop is still writing earlier batches. After a while, stay in
                    # the group (poll) but fetch nothing (pause), however long it takes.
                    waiting_since = waiting_since or time.monotonic()
                    self._store(consumer)
                    if time.monotonic() - seen > HIGHWATER_EVERY_S:  # nothing is fetched: ask the broker
                        seen = time.monotonic()
                        self._read_highwater(consumer, cached=False)
                    if time.monotonic() - waiting_since > PAUSE_AFTER_S:
                        consumer.pause(consumer.assignment())  # again: a rebalance may have added some
                        paused = True
                        self._put_back(consumer.poll(0))
                    continue
                waiting_since = None
                self._store(consumer)
                if paused:
                    consumer.resume(consumer.assignment())
                    paused = False
                generation = self._generation
                messages = filler.fill(lambda n, timeout: consumer.consume(n, timeout=timeout))
                if time.monotonic() - seen > HIGHWATER_EVERY_S:
                    seen = time.monotonic()
                    self._read_highwater(consumer)
                messages = self._without_errors(messages)
                if not messages:
                    self._slot.release()
                    continue
                if generation != self._generation:  # a rebalance happened inside consume()
                    self._put_back_all(consumer, messages)
                    self._slot.release()
                    continue
                batch = to_batch(self.topic, messages)
                self._loop.call_soon_threadsafe(self._queue.put_nowait, (generation, batch))
        except Exception:  # noqa: BLE001 -- a consumer that died must not leave a worker that looks alive
            log.critical("the requests consumer failed", exc_info=True)
            self._loop.call_soon_threadsafe(self.on_fatal, MessageBatch(self.topic, np.zeros(0, np.int64),
                                                                        np.zeros(0, np.int64), []))
        finally:
            self._store(consumer)
            consumer.close()  # revokes (committing what is durable) and leaves the group

    def _without_errors(self, messages: list[Message]) -> list[Message]:
        errors = list(filter(Message.error, messages))
        if not errors:
            return messages
        for m in errors:
            if m.error().code() != KafkaError._PARTITION_EOF:
                log.warning("requests consumer: %s", m.error())
        return list(itertools.filterfalse(Message.error, messages))

    def _put_back(self, message: Message | None) -> None:
        """A message polled while paused is not ours to take yet: read it again later."""
        if message is not None and not message.error():
            self._put_back_all(self._consumer, [message])

    def _put_back_all(self, consumer: Consumer, messages: list[Message]) -> None:
        first: dict[int, int] = {}
        for m in messages:
            first.setdefault(m.partition(), m.offset())
        for partition, offset in first.items():
            try:
                consumer.seek(TopicPartition(self.topic, partition, offset))
            except KafkaException as exc:  # no longer assigned: its next owner reads it
                log.debug("not re-reading %s:%d:%d: %s", self.topic, partition, offset, exc)

    def _read_highwater(self, consumer: Consumer, cached: bool = True) -> None:
        """Each assigned partition's high-water mark, for the lag gauge: as of the
        last fetch (``cached``), or from the broker when nothing is fetched."""
        for tp in consumer.assignment():
            try:
                _, high = consumer.get_watermark_offsets(tp, timeout=1, cached=cached)
            except KafkaException:
                continue
            self._highwater[(tp.topic, tp.partition)] = high

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Restore progress from ClickHouse, then start each partition after what is durable."""
        tps = [(p.topic, p.partition) for p in partitions]
        self._on_loop(self.handler.on_assigned(tps))
        try:
            committed = {(c.topic, c.partition): c.offset for c in consumer.committed(partitions, timeout=30)}
        except KafkaException as exc:  # librdkafka then starts from the committed offsets itself
            log.warning("committed offsets unknown (%s); skipping what ClickHouse holds by offset", exc)
            committed = None
        for p in partitions:
            done = self.handler.progress.get((p.topic, p.partition))
            if committed is not None and done is not None:
                start = max(committed.get((p.topic, p.partition), -1), done.next_offset)
                if start > 0:
                    p.offset = start
        consumer.assign(partitions)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Finish the batch in flight, drop queued ones, commit what is durable."""
        self._generation += 1
        tps = [(p.topic, p.partition) for p in partitions]
        self._on_loop(self._give_up(tps))
        self._store(consumer)
        try:
            consumer.commit(asynchronous=False)
            committed = True
        except KafkaException as exc:  # nothing stored since the last commit, or the group moved on
            committed = exc.args[0].code() == KafkaError._NO_OFFSET
        log.info("gave up %s partitions %s (offsets committed: %s)", self.topic, sorted(p for _, p in tps),
                 committed)
        for tp in tps:
            self._highwater.pop(tp, None)

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """The group moved on without us (session timeout): another worker may own
        these already, so commit nothing."""
        self._generation += 1
        tps = [(p.topic, p.partition) for p in partitions]
        self._on_loop(self._give_up(tps))
        log.warning("lost %s partitions %s to a rebalance", self.topic, sorted(p for _, p in tps))

    async def _give_up(self, tps: list[tuple[str, int]]) -> None:
        async with self.handler.lock:
            await self.handler.flush()  # the write in flight lands before anyone else may write
            self.handler.on_revoked(tps)

    def _on_loop(self, coroutine) -> None:
        """Run a coroutine on the event loop and wait for it (from the consumer thread)."""
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        except RuntimeError:  # the loop is gone: the worker is exiting
            coroutine.close()
            return
        try:
            future.result(timeout=60 if self._stopping.is_set() else None)
        except concurrent.futures.TimeoutError:  # stopping, and the batch in flight is stuck: ClickHouse
            log.warning("stopping without waiting for the batch in flight; its messages will be read again")
        except concurrent.futures.CancelledError:  # stopping: the handler gave up waiting for ClickHouse
            log.info("stopping during a rebalance; the partitions' next owner resumes them")

    def _offsets(self, batch: MessageBatch) -> list[TopicPartition]:
        """The next offset of each owned partition of a durable batch."""
        owned = set(self.handler.owned_partitions(self.topic))
        return [TopicPartition(self.topic, p, last + 1) for (_, p), (_, last) in batch.spans().items() if p in owned]

    def _store(self, consumer: Consumer) -> None:
        """Mark what is durable for the next commit (on the consumer thread)."""
        while self._done:
            offsets = self._done.popleft()
            if offsets:
                try:
                    consumer.store_offsets(offsets=offsets)
                except KafkaException as exc:  # revoked meanwhile: ClickHouse still knows how far it is written
                    log.debug("offsets not stored: %s", exc)
