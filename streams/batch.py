"""Turn one batch of Kafka messages into what must become durable (pure).

Messages at offsets already durable (``progress``) are skipped: after a crash or
a rebalance the consumer may re-read them, and writing them again would count
them twice. The rest are decoded, judged against their partition's watermark,
and reduced to window rows that carry their source offsets and the partition's
new event-time high-water mark, plus dead letters for what could not be used.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Mapping, NamedTuple

import numpy as np

from fleetpulse.settings import Settings
from fleetpulse.schemas import Decoded, DeadLetter, decode_message
from fleetpulse.streams.aggregate import RequestColumns, aggregate, to_columns
from fleetpulse.streams.deadletter import SourcedDeadLetter
from fleetpulse.streams.rows import EventSource, SourceSpan, event_rows, window_rows
from fleetpulse.streams.watermark import PartitionProgress, late_flags

TopicPartition = tuple[str, int]


class RawMessage(NamedTuple):
    topic: str
    partition: int
    offset: int
    value: bytes


@dataclasses.dataclass
class BatchResult:
    source: str
    messages: int
    skipped: int
    events: int
    late_events: int
    window_rows: list[list]
    event_rows: list[list]
    dead: list[SourcedDeadLetter]
    progress: dict[TopicPartition, PartitionProgress]
    columns: RequestColumns


@dataclasses.dataclass(frozen=True)
class Retention:
    """Windows older than ClickHouse keeps (the TTL of request_windows and
    gpu_samples) would be deleted as they are inserted; such events go to the
    dead letters instead, so that nothing disappears without a trace."""

    oldest_window_start: float
    setting: str

    @classmethod
    def now(cls, settings: Settings) -> "Retention":
        days = settings.windows_ttl_days
        return cls(time.time() - days * 86400, f"FLEETPULSE_WINDOWS_TTL_DAYS={days}")

    def split(self, decoded: Decoded, window_seconds: int) -> Decoded:
        """The events ClickHouse keeps, and a dead letter for each older one:
        with its place in the envelope (``events[i].``), and bytes that can
        always be built (decoded.letter)."""
        kept = Decoded([], decoded.dead, decoded.raw, None if decoded.index is None else [])
        for k, event in enumerate(decoded.events):
            start = event["timestamp"] // window_seconds * window_seconds
            if start >= self.oldest_window_start:
                kept.events.append(event)
                if kept.index is not None:
                    kept.index.append(decoded.index[k])
            else:
                kept.dead.append(decoded.letter(k, f"timestamp: {event['timestamp']} is older than ClickHouse "
                                                   f"keeps windows ({self.setting}); not stored"))
        return kept


def safe_decode(raw: bytes, max_bytes: int, kind: str = "request") -> Decoded:
    """decode_message never raises on any input we know of; should one still
    surprise it, that message becomes a dead letter instead of stopping the worker."""
    try:
        return decode_message(raw, kind, max_bytes)
    except Exception as exc:  # noqa: BLE001 -- the last line of defence, by design
        return Decoded([], [DeadLetter(f"message: could not be decoded ({type(exc).__name__}: {exc})", raw)], raw)


def _origins(messages: list[RawMessage], per_message: list[int]) -> list[EventSource]:
    """Where each event came from; built only when raw events are stored."""
    return [EventSource(m.topic, m.partition, m.offset, i) for m, n in zip(messages, per_message) for i in range(n)]


def offset_spans(messages: list[RawMessage]) -> dict[TopicPartition, tuple[int, int]]:
    """(first, last) offset per (topic, partition) among ``messages``."""
    spans: dict[TopicPartition, tuple[int, int]] = {}
    for m in messages:
        lo, hi = spans.get((m.topic, m.partition), (m.offset, m.offset))
        spans[(m.topic, m.partition)] = (min(lo, m.offset), max(hi, m.offset))
    return spans


def source_of(spans: Mapping[TopicPartition, tuple[int, int]]) -> str:
    """``topic:partition:first-last`` per partition, sorted: stable for the same offsets."""
    return ",".join(f"{t}:{p}:{lo}-{hi}" for (t, p), (lo, hi) in sorted(spans.items()))


def process_batch(messages: list[RawMessage], progress: Mapping[TopicPartition, PartitionProgress], *,
                  window_seconds: int, lateness: float, max_bytes: int, keep_events: bool,
                  retention: Retention | None = None) -> BatchResult:
    fresh = [m for m in messages if m.offset >= progress.get((m.topic, m.partition), PartitionProgress()).next_offset]
    spans = offset_spans(fresh)
    tps = sorted(spans)
    index = {tp: i for i, tp in enumerate(tps)}

    events: list[dict] = []
    per_message: list[int] = []  # events decoded from each fresh message
    dead: list[SourcedDeadLetter] = []
    for m in fresh:
        decoded = safe_decode(m.value or b"", max_bytes)
        if retention is not None:
            decoded = retention.split(decoded, window_seconds)
        events.extend(decoded.events)
        per_message.append(len(decoded.events))
        dead.extend(SourcedDeadLetter(d, m.topic, m.partition, m.offset) for d in decoded.dead)

    cols = to_columns(events)
    sources = np.repeat(np.array([index[(m.topic, m.partition)] for m in fresh], dtype=np.int64),
                        per_message) if fresh else np.zeros(0, dtype=np.int64)
    prior = [progress.get(tp, PartitionProgress()).max_event_time for tp in tps]
    late, new_max = late_flags(cols.timestamp, sources, prior, window_seconds, lateness)
    partials = aggregate(cols, window_seconds, sources, late)
    source = source_of(spans)
    row_spans = [SourceSpan(t, p, *spans[(t, p)], new_max[i]) for i, (t, p) in enumerate(tps)]
    return BatchResult(
        source=source,
        messages=len(messages),
        skipped=len(messages) - len(fresh),
        events=len(events),
        late_events=int(late.sum()),
        window_rows=window_rows(partials, window_seconds, row_spans),
        event_rows=event_rows(events, _origins(fresh, per_message)) if keep_events else [],
        dead=dead,
        progress={tp: PartitionProgress(spans[tp][1] + 1, new_max[i]) for i, tp in enumerate(tps)},
        columns=cols,
    )
