"""The dead-letter topic: every input the worker cannot use, with its reason.

The record's value is the original bytes; headers carry the reason and where
it came from, so a person can read why and replay it after a fix.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException, Producer

from fleetpulse.errors import KafkaUnavailable
from fleetpulse.streams.windows.batch import SourcedDeadLetter
from fleetpulse.topics import DEADLETTER_MAX_BYTES


class DeadLetterSink:
    """Writes dead letters durably: ``write`` returns only once Kafka has them."""

    def __init__(self, bootstrap: str, topic: str):
        self.topic = topic
        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "zstd",
            "message.max.bytes": DEADLETTER_MAX_BYTES,
            "logger": logging.getLogger("fleetpulse.librdkafka"),
        })

    def write(self, letters: list[SourcedDeadLetter], timeout: float = 30.0) -> list[SourcedDeadLetter]:
        """Produce and wait. Returns the letters Kafka refused for good (e.g. too
        large); raises KafkaUnavailable when delivery did not complete (retry later)."""
        refused: list[SourcedDeadLetter] = []
        failures: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, item: SourcedDeadLetter) -> None:
            if err is None:
                return
            if err.retriable() or err.code() == KafkaError._MSG_TIMED_OUT:
                failures.append(err)
            else:
                refused.append(item)

        for item in letters:
            if not self._produce(item, on_delivery):
                refused.append(item)
        if self._producer.flush(timeout) > 0 or failures:
            raise KafkaUnavailable(f"dead-letter topic {self.topic}: delivery did not complete")
        return refused

    def _produce(self, item: SourcedDeadLetter, on_delivery) -> bool:
        """Queue one record; False when the client refuses it outright (too large)."""
        headers = [
            ("fleetpulse.reason", item.letter.reason.encode()),
            ("fleetpulse.source", f"{item.topic}:{item.partition}:{item.offset}".encode()),
        ]
        for attempt in range(2):
            try:
                self._producer.produce(self.topic, value=item.letter.raw, headers=headers,
                                       on_delivery=lambda err, _msg: on_delivery(err, item))
                return True
            except BufferError:  # local queue full: drain it, then try once more
                self._producer.flush(10)
            except KafkaException as exc:
                if exc.args and exc.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE:
                    return False
                raise KafkaUnavailable(f"dead-letter topic {self.topic}: {exc}") from exc
        raise KafkaUnavailable(f"dead-letter topic {self.topic}: local producer queue stays full")

    def close(self) -> None:
        self._producer.flush(10)
