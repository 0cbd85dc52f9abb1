"""The requests consumer's librdkafka settings, and consumed messages as columns."""

from __future__ import annotations

import numpy as np
from confluent_kafka import Message

from fleetpulse.settings import Settings
from fleetpulse.streams.windows.batch import MessageBatch


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
        # Two full batches, so that consume() finds the next batch waiting while
        # this one is processed: with less, single-event messages (a small one
        # each) waited on fetches, at half the throughput in bench/.
        "queued.max.messages.kbytes": max(8192, 2 * max(settings.max_message_bytes, settings.batch_max_bytes) // 1024),
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
