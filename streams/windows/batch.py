"""Turn one batch of Kafka messages into what must become durable (pure).

Messages at offsets already durable (``progress``) are skipped: after a crash or
a rebalance the consumer may re-read them, and writing them again would count
them twice. The rest are decoded, judged against their partition's watermark,
and reduced to window rows that carry their source offsets and the partition's
new event-time high-water mark, plus dead letters for what could not be used.

Request batches arrive as columns (:class:`MessageBatch`: partitions, offsets
and values side by side) and stay columns: skipping, decoding (schemas.fast),
window assignment and grouping run over whole arrays, never per message.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from fleetpulse.schemas import DeadLetter, Decoded
from fleetpulse.schemas.columnar import decode_columns
from fleetpulse.schemas.fast import decode_requests
from fleetpulse.schemas.validate import safe_decode
from fleetpulse.settings import Settings
from fleetpulse.streams.windows.aggregate import WindowBlock, aggregate
from fleetpulse.streams.windows.columns import RequestColumns, from_arrow, to_columns
from fleetpulse.streams.windows.grid import window_starts
from fleetpulse.streams.windows.rows import EventRun, EventSource, SourceSpan, day_runs, event_rows, window_block, window_rows
from fleetpulse.streams.windows.tenants import TenantBlock, aggregate_tenants, tenant_block, tenant_keep
from fleetpulse.streams.windows.watermark import PartitionProgress, late_flags

TopicPartition = tuple[str, int]


class RawMessage(NamedTuple):
    topic: str
    partition: int
    offset: int
    value: bytes


@dataclasses.dataclass(frozen=True)
class SourcedDeadLetter:
    """A dead letter and the message it came from (the dead-letter topic's headers)."""

    letter: DeadLetter
    topic: str
    partition: int
    offset: int


@dataclasses.dataclass(frozen=True)
class MessageBatch:
    """Messages of one topic as columns, in the order they were consumed."""

    topic: str
    partitions: np.ndarray  # int64
    offsets: np.ndarray  # int64
    values: list[bytes]

    @classmethod
    def of(cls, messages: Sequence[RawMessage]) -> "MessageBatch":
        topics = {m.topic for m in messages}
        if len(topics) > 1:
            raise ValueError(f"one topic per batch, got {sorted(topics)}")
        return cls(topics.pop() if topics else "", np.array([m.partition for m in messages], dtype=np.int64),
                   np.array([m.offset for m in messages], dtype=np.int64), [m.value or b"" for m in messages])

    def __len__(self) -> int:
        return len(self.values)

    def take(self, keep: np.ndarray) -> "MessageBatch":
        """The messages where ``keep`` (a bool mask) is true."""
        return MessageBatch(self.topic, self.partitions[keep], self.offsets[keep],
                            list(itertools.compress(self.values, keep.tolist())))

    def slice(self, lo: int, hi: int) -> "MessageBatch":
        return MessageBatch(self.topic, self.partitions[lo:hi], self.offsets[lo:hi], self.values[lo:hi])

    def split(self, limit: int) -> list["MessageBatch"]:
        """Contiguous runs of at most ``limit`` bytes (see :func:`byte_runs`)."""
        return [self.slice(lo, hi) for lo, hi in byte_runs(np.fromiter(map(len, self.values), np.int64,
                                                                       len(self.values)), limit)]

    def spans(self) -> dict[TopicPartition, tuple[int, int]]:
        """(first, last) offset per partition."""
        out = {}
        for p in np.unique(self.partitions).tolist():
            offsets = self.offsets[self.partitions == p]
            out[(self.topic, p)] = (int(offsets.min()), int(offsets.max()))
        return out


def byte_runs(sizes: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """[lo, hi) runs of consecutive messages holding at most ``limit`` bytes
    (at least one message each): memory per insert stays bounded however full
    the envelopes are, and each partition's offsets stay in order from one run
    to the next. Python runs per run, not per message."""
    ends = np.cumsum(sizes)
    runs, lo = [], 0
    while lo < len(sizes):
        before = int(ends[lo - 1]) if lo else 0
        hi = max(lo + 1, int(np.searchsorted(ends, before + limit, side="right")))
        runs.append((lo, hi))
        lo = hi
    return runs


@dataclasses.dataclass
class BatchResult:
    source: str
    messages: int
    skipped: int
    events: int
    late_events: int
    windows: WindowBlock
    spans: list[SourceSpan]  # indexed by windows.source
    window_seconds: int
    event_rows: list[list]  # in the order of event_runs
    event_runs: list[EventRun]  # one INSERT each (rows.DAYS_PER_INSERT)
    dead: list[SourcedDeadLetter]
    progress: dict[TopicPartition, PartitionProgress]
    columns: list[RequestColumns]  # the events, one entry per run processed (merge.merge_results)
    slow_messages: int = 0  # messages the per-message validator decided (bad input, integral floats...)
    tenants: TenantBlock | None = None  # tenant_windows rows (streams/windows/tenants.py)

    @property
    def window_rows(self) -> list[list]:
        """The window rows as Python lists (for reading and tests)."""
        return window_rows(self.windows, self.window_seconds, self.spans)

    def window_block(self) -> bytes:
        """The window rows as the Native block the sink inserts."""
        return window_block(self.windows, self.window_seconds, self.spans)

    def tenant_block(self) -> bytes:
        """The tenant rows as the Native block the sink inserts."""
        return tenant_block(self.tenants, self.window_seconds, self.spans)


@dataclasses.dataclass(frozen=True)
class Retention:
    """The event times fleetpulse stores, judged against the worker's clock.

    - Older than ClickHouse keeps (the TTL of request_windows and gpu_samples):
      the rows would be deleted as they are inserted.
    - Further ahead than FLEETPULSE_MAX_CLOCK_SKEW_SECONDS: one event from a
      host whose clock says 2099 would move its partition's watermark to 2099
      and mark every later event of that partition late.

    Such events go to the dead letters with the reason (and never move a
    watermark), so that nothing disappears without a trace."""

    oldest_window_start: float
    setting: str
    newest_event_time: float = float("inf")
    skew_setting: str = ""

    @classmethod
    def now(cls, settings: Settings, clock: float | None = None) -> "Retention":
        now = time.time() if clock is None else clock
        days, skew = settings.windows_ttl_days, settings.max_clock_skew_seconds
        return cls(now - days * 86400, f"FLEETPULSE_WINDOWS_TTL_DAYS={days}",
                   now + skew, f"FLEETPULSE_MAX_CLOCK_SKEW_SECONDS={skew}")

    def outside(self, timestamps: np.ndarray, window_seconds: int) -> np.ndarray:
        return (window_starts(timestamps, window_seconds) < self.oldest_window_start) | (
            timestamps > self.newest_event_time)

    def reason(self, timestamp: float) -> str:
        if timestamp > self.newest_event_time:
            return (f"timestamp: {timestamp} is ahead of the worker's clock by more than {self.skew_setting} "
                    "allows; not stored (fix the sender's clock, or raise the setting)")
        return (f"timestamp: {timestamp} is older than ClickHouse keeps windows ({self.setting}); "
                "not stored")

    def split(self, decoded: Decoded, window_seconds: int) -> Decoded:
        """The events ClickHouse keeps, and a dead letter for each one outside:
        with its place in the envelope (``events[i].``), and bytes that can
        always be built (decoded.letter)."""
        out = self.outside(np.array([e["timestamp"] for e in decoded.events], dtype=np.float64), window_seconds)
        kept = Decoded([], decoded.dead, decoded.raw, None if decoded.index is None else [])
        for k, (event, is_out) in enumerate(zip(decoded.events, out.tolist())):
            if is_out:
                kept.dead.append(decoded.letter(k, self.reason(event["timestamp"])))
            else:
                kept.events.append(event)
                if kept.index is not None:
                    kept.index.append(decoded.index[k])
        return kept


def source_of(spans: Mapping[TopicPartition, tuple[int, int]]) -> str:
    """``topic:partition:first-last`` per partition, sorted: stable for the same offsets."""
    return ",".join(f"{t}:{p}:{lo}-{hi}" for (t, p), (lo, hi) in sorted(spans.items()))


def _fresh(batch: MessageBatch, progress: Mapping[TopicPartition, PartitionProgress]) -> np.ndarray:
    """Which messages are past what is already durable."""
    keep = np.ones(len(batch), dtype=bool)
    for p in np.unique(batch.partitions).tolist():
        done = progress.get((batch.topic, p))
        if done is not None and done.next_offset > 0:
            keep &= (batch.partitions != p) | (batch.offsets >= done.next_offset)
    return keep


def process_batch(messages: MessageBatch | list[RawMessage], progress: Mapping[TopicPartition, PartitionProgress],
                  *, window_seconds: int, lateness: float, max_bytes: int, keep_events: bool,
                  retention: Retention | None = None,
                  tenant_floor: dict[TopicPartition, int] | None = None) -> BatchResult:
    """``tenant_floor``: the next offset per partition tenant_windows lacks
    (it may be ahead of ``progress``: see streams/windows/tenants.py)."""
    batch = messages if isinstance(messages, MessageBatch) else MessageBatch.of(messages)
    fresh = batch.take(_fresh(batch, progress))
    spans = fresh.spans()
    tps = sorted(spans)
    source_index = np.zeros(max([p for _, p in tps], default=-1) + 1, dtype=np.int64)
    source_index[[p for _, p in tps]] = np.arange(len(tps))

    # Columns straight from Arrow (schemas.columnar): nothing per event in Python.
    # The msgspec path when Arrow refuses the batch, or when request_events
    # takes each event as a row (it gives them as objects).
    columnar = None if keep_events else decode_columns(fresh.values, max_bytes)
    if columnar is None:
        decoded = decode_requests(fresh.values, max_bytes)
        cols, events = to_columns(decoded.events), decoded.events
    else:
        decoded, cols, events = columnar, from_arrow(columnar.events), []
    per_message = np.asarray(decoded.per_message, dtype=np.int64)
    dead = [SourcedDeadLetter(letter, fresh.topic, int(fresh.partitions[i]), int(fresh.offsets[i]))
            for i, letter in decoded.dead]
    if retention is not None and len(cols):
        old = retention.outside(cols.timestamp, window_seconds)
        if old.any():
            per_message, letters = _retention_letters(fresh, per_message, old, retention, window_seconds, max_bytes)
            dead.extend(letters)
            cols = cols.take(~old)
            if keep_events:
                events = list(itertools.compress(events, (~old).tolist()))

    rows, runs = _event_rows(events, _origins(fresh, per_message), cols.timestamp) if keep_events else ([], [])
    sources = np.repeat(source_index[fresh.partitions], per_message)
    prior = [progress.get(tp, PartitionProgress()).max_event_time for tp in tps]
    late, new_max = late_flags(cols.timestamp, sources, prior, window_seconds, lateness)
    row_spans = [SourceSpan(t, p, *spans[(t, p)], new_max[i]) for i, (t, p) in enumerate(tps)]
    return BatchResult(
        source=source_of(spans),
        messages=len(batch),
        skipped=len(batch) - len(fresh),
        events=len(cols),
        late_events=int(late.sum()),
        windows=aggregate(cols, window_seconds, sources, late),
        spans=row_spans,
        window_seconds=window_seconds,
        event_rows=rows,
        event_runs=runs,
        dead=dead,
        progress={tp: PartitionProgress(spans[tp][1] + 1, new_max[i]) for i, tp in enumerate(tps)},
        columns=[cols],
        slow_messages=len(decoded.slow),
        tenants=aggregate_tenants(cols, window_seconds, sources, tenant_keep(
            fresh.partitions, fresh.offsets, per_message, fresh.topic, tenant_floor or {})),
    )


def _retention_letters(fresh: MessageBatch, per_message: np.ndarray, old: np.ndarray, retention: Retention,
                       window_seconds: int, max_bytes: int) -> tuple[np.ndarray, list[SourcedDeadLetter]]:
    """Dead letters for events outside the stored event times, and the events
    left per message. Rare (a replay of old data, a broken clock), so the messages that hold such events are
    decoded once more by the per-message validator, whose letters carry each
    event's place in its envelope and its own bytes."""
    owner = np.repeat(np.arange(len(fresh)), per_message)
    letters = []
    for i in np.unique(owner[old]).tolist():
        decoded = safe_decode(fresh.values[i], max_bytes)
        invalid = len(decoded.dead)  # already dead-lettered by the batch decoder
        outside = retention.split(decoded, window_seconds).dead[invalid:]
        letters.extend(SourcedDeadLetter(d, fresh.topic, int(fresh.partitions[i]), int(fresh.offsets[i]))
                       for d in outside)
    return per_message - np.bincount(owner[old], minlength=len(fresh)), letters


def _event_rows(events: list, origins: list[EventSource], timestamps: np.ndarray) -> tuple[list[list], list[EventRun]]:
    """The rows of request_events, and the runs of them each INSERT takes.
    ``timestamps`` are the events' (both what retention kept, in order); rows
    are reordered by day only when the batch spans more days than one INSERT
    may, with C-level ``map``."""
    rows = event_rows(events, origins)
    order, runs = day_runs(timestamps)
    return (rows if order is None else list(map(rows.__getitem__, order.tolist()))), runs


def _origins(fresh: MessageBatch, per_message: np.ndarray) -> list[EventSource]:
    """Where each event came from; built only when raw events are stored."""
    return [EventSource(fresh.topic, p, o, i) for p, o, n in zip(fresh.partitions.tolist(), fresh.offsets.tolist(),
                                                                 per_message.tolist()) for i in range(n)]
