"""The requests consumer's librdkafka settings, batches filled up to a byte
budget, and consumed messages as columns."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
from confluent_kafka import Message

from fleetpulse.settings import Settings
from fleetpulse.streams.windows.batch import MessageBatch


#: A batch handed over holds up to this many runs of FLEETPULSE_BATCH_MAX_BYTES:
#: the handler decodes them one by one (memory) while the handover before is
#: written, and writes their window rows in one insert (handler.WRITE_ROWS).
RUNS_PER_BATCH = 4


def handover_bytes(settings: Settings) -> int:
    """The most message bytes one handover holds (one batch of the consumer)."""
    return RUNS_PER_BATCH * settings.batch_max_bytes


def consumer_config(settings: Settings) -> dict:
    """librdkafka settings of the requests consumer."""
    config = {
        "bootstrap.servers": settings.bootstrap,
        # Its own group: faust's consumer (GPU topic) speaks faust's assignor
        # protocol, and Kafka refuses two protocols in one group.
        "group.id": f"{settings.consumer_group}.requests",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,  # commits what store_offsets marked: only durable batches
        "enable.auto.offset.store": False,
        "auto.commit.interval.ms": 1000,
        "session.timeout.ms": settings.session_timeout_seconds * 1000,
        "heartbeat.interval.ms": max(1000, settings.session_timeout_seconds * 250),
        "partition.assignment.strategy": "range",
        # Prefetch is memory: bounded, and at least two of the largest messages.
        # One handover (handover_bytes), fetched while the consumer waits for
        # a free slot, so that the next handover is waiting when one frees:
        # with less, the consumer waited on fetches while the batch math sat
        # idle (bench/, one sitting: single events 110-124k/s with one
        # handover, 95k with two runs, 77-84k with one; envelopes 186-211k,
        # 171-173k and 146-149k). Twice that gained nothing more.
        "queued.max.messages.kbytes": max(8192, 2 * settings.max_message_bytes // 1024,
                                          handover_bytes(settings) // 1024),
        "max.partition.fetch.bytes": max(4 << 20, settings.max_message_bytes),
        "fetch.max.bytes": max(8 << 20, 2 * settings.max_message_bytes),
        "log_level": 4,  # warnings and worse
    }
    if settings.worker_id:
        config["group.instance.id"] = settings.worker_id  # a restart rejoins without a rebalance
    return config


def to_batch(topic: str, messages: list[Message]) -> MessageBatch:
    """Columns of consumed messages, with C-level map: no Python per message."""
    n = len(messages)
    values = list(map(Message.value, messages))
    if None in values:  # a tombstone: an empty message, which decoding dead-letters
        values = [v or b"" for v in values]
    return MessageBatch(topic, np.fromiter(map(Message.partition, messages), np.int64, n),
                        np.fromiter(map(Message.offset, messages), np.int64, n), values)


class BatchFiller:
    """Fill one batch from ``consume(n, timeout)`` (librdkafka's
    ``Consumer.consume``) up to ``max_bytes`` of values or ``max_messages``
    messages, waiting at most ``wait_s`` for more.

    librdkafka's consume() returns when it has ``n`` messages or when the
    timeout passes, and keeps fetching meanwhile, past its prefetch cap: asked
    for 50,000 envelopes of 270 KB it waited the whole timeout and returned
    155 MiB. So each call asks for the messages the remaining budget holds at
    the sizes seen so far (an average that follows the stream), and returns
    as soon as those are there; one call's overshoot is bounded by how many it
    asked for. Python runs per call, not per message.
    """

    def __init__(self, max_bytes: int, max_messages: int, wait_s: float, first_guess: int,
                 clock: Callable[[], float] = time.monotonic):
        self.max_bytes, self.max_messages, self.wait_s = max_bytes, max_messages, wait_s
        self.average = float(first_guess)  # bytes per message; first_guess errs large (small first batch)
        self._guessing = True
        self._clock = clock

    def fill(self, consume: Callable[[int, float], list[Message]]) -> list[Message]:
        deadline = self._clock() + self.wait_s
        messages: list[Message] = []
        size = 0
        while True:
            room = self.max_bytes - size
            n = max(1, min(self.max_messages - len(messages), int(room // max(self.average, 1.0))))
            got = consume(n, max(0.0, deadline - self._clock()))
            if got:
                got_bytes = sum(map(len, filter(None, map(Message.value, got))))
                seen = got_bytes / len(got)
                self.average, self._guessing = (seen if self._guessing else 0.5 * self.average + 0.5 * seen), False
                messages += got
                size += got_bytes
            if len(got) < n or size >= self.max_bytes or len(messages) >= self.max_messages or \
                    self._clock() >= deadline:
                return messages
