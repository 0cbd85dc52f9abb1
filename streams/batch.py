"""Turn one batch of Kafka messages into what must become durable (pure).

Input is (topic, partition, offset, value) per message; output is the window
rows, optional raw-event rows, the dead letters, and the ``source`` string that
names the offsets, which doubles as the ClickHouse deduplication token.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from fleetpulse.schemas import decode_message
from fleetpulse.streams.aggregate import aggregate, to_columns
from fleetpulse.streams.deadletter import SourcedDeadLetter
from fleetpulse.streams.rows import event_rows, window_rows


class RawMessage(NamedTuple):
    topic: str
    partition: int
    offset: int
    value: bytes


@dataclasses.dataclass
class BatchResult:
    source: str
    messages: int
    events: int
    window_rows: list[list]
    event_rows: list[list]
    dead: list[SourcedDeadLetter]


def source_of(messages: list[RawMessage]) -> str:
    """``topic:partition:first-last`` per partition, sorted: stable for the same offsets."""
    spans: dict[tuple[str, int], list[int]] = {}
    for m in messages:
        span = spans.setdefault((m.topic, m.partition), [m.offset, m.offset])
        span[0] = min(span[0], m.offset)
        span[1] = max(span[1], m.offset)
    return ",".join(f"{t}:{p}:{lo}-{hi}" for (t, p), (lo, hi) in sorted(spans.items()))


def process_batch(messages: list[RawMessage], *, window_seconds: int, max_bytes: int,
                  keep_events: bool) -> BatchResult:
    events: list[dict] = []
    dead: list[SourcedDeadLetter] = []
    for m in messages:
        decoded = decode_message(m.value or b"", "request", max_bytes)
        events.extend(decoded.events)
        dead.extend(SourcedDeadLetter(d, m.topic, m.partition, m.offset) for d in decoded.dead)
    source = source_of(messages)
    partials = aggregate(to_columns(events), window_seconds)
    return BatchResult(
        source=source,
        messages=len(messages),
        events=len(events),
        window_rows=window_rows(partials, window_seconds, source),
        event_rows=event_rows(events, source) if keep_events else [],
        dead=dead,
    )
