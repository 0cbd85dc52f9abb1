"""Event-time watermarks per source partition, which events are too late, and
the fleet watermark that closes windows (pure).

The watermark of a partition is the newest event time seen in it so far minus
the allowed lateness. A window [start, start + W) closes when the watermark
reaches its end; an event whose window has closed is *late*: it still counts,
but is stored as a correction (``late = 1``) and counted in a metric.

Watermarks are per partition and follow offset order, so whether an event is
late depends only on the partition's own history, never on how messages were
cut into batches or which worker read them. That keeps the classification
identical when a batch is replayed after a crash.

Windows close for drift, alert rules and GPU windows by the *fleet*
watermark: the oldest watermark among the sources still sending
(:func:`fleet_high_water`), so a partition 60 s behind the others is waited
for instead of judged without its rows. A source that has stopped sending
goes idle (:class:`IdleTracker`) and stops holding it back.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Collection, Mapping

import numpy as np

from fleetpulse.streams.windows.grid import window_start, window_starts

NO_EVENT_TIME = float("-inf")


@dataclasses.dataclass(frozen=True)
class PartitionProgress:
    """How far a partition is durable: the next offset to write, and the newest
    event time among everything written so far."""

    next_offset: int = 0
    max_event_time: float = NO_EVENT_TIME


Source = tuple[str, str]  # (stream, name): ("requests", "fleetpulse.requests:3"), ("gpu", "node-a") a GPU host


@dataclasses.dataclass(frozen=True)
class SourceMark:
    """One source as the fleet watermark sees it: its newest event time written,
    and whether it has gone idle (stopped holding windows open)."""

    high_water: float
    idle: bool


class IdleTracker:
    """Which sources have stopped, by the wall clock (Flink's ``withIdleness``).

    A source is idle once its newest event time has not moved for
    ``idle_seconds``, unless it still has messages waiting to be written
    (``busy``): a partition the worker is working through, or is held on by
    backpressure, has data on the way. A busy source that has written nothing
    at all is judged by time alone, so a partition of only bad messages cannot
    hold the fleet. After a restart every source starts fresh: the first
    ``idle_seconds`` are conservative, never early."""

    def __init__(self, idle_seconds: float):
        self._idle_seconds = idle_seconds
        self._changed: dict[Source, tuple[float, float]] = {}  # source -> (high water, when it last moved)

    def observe(self, high_waters: Mapping[Source, float], busy: Collection[Source], now: float) -> dict[Source, SourceMark]:
        marks = {}
        for source in set(high_waters) | set(busy):
            high = high_waters.get(source, NO_EVENT_TIME)
            seen = self._changed.get(source)
            if seen is None or seen[0] != high:
                seen = self._changed[source] = (high, now)
            waiting = source in busy and high != NO_EVENT_TIME
            marks[source] = SourceMark(high, now - seen[1] >= self._idle_seconds and not waiting)
        for gone in set(self._changed) - set(marks):
            del self._changed[gone]
        return marks


def fleet_high_water(marks: Mapping[Source, SourceMark], streams: Collection[str]) -> float | None:
    """The event time every active source of ``streams`` has reached: the
    oldest newest-event-time among those not idle. When all are idle nothing
    is on the way, and the newest of them stands. None before any data."""
    chosen = [m for (stream, _), m in marks.items() if stream in streams and m.high_water != NO_EVENT_TIME]
    waiting = [m for (stream, _), m in marks.items() if stream in streams and not m.idle]
    if any(m.high_water == NO_EVENT_TIME for m in waiting):
        return None  # a source with messages on the way and nothing written yet
    active = [m.high_water for m in waiting]
    if active:
        return min(active)
    return max((m.high_water for m in chosen), default=None)


def newest_closed_start(high_water: float | None, step: int, lateness: float) -> int | None:
    """The start of the newest window a watermark at ``high_water - lateness``
    has closed (its end is at or before the watermark), or None before any data."""
    if high_water is None or not math.isfinite(high_water) or high_water <= 0:
        return None
    return window_start(high_water - lateness, step) - step


def late_flags(timestamps: np.ndarray, sources: np.ndarray, prior_max: list[float],
               window_seconds: int, lateness: float) -> tuple[np.ndarray, list[float]]:
    """For events in offset order, each tagged with its source index, return
    (is_late per event, the new max event time per source).

    An event is judged against the watermark *before* it: the max of its
    partition's earlier events (and ``prior_max``) minus ``lateness``.
    """
    late = np.zeros(len(timestamps), dtype=bool)
    new_max = list(prior_max)
    window_end = window_starts(timestamps, window_seconds) + window_seconds
    for source, start_max in enumerate(prior_max):
        idx = np.flatnonzero(sources == source)
        if idx.size == 0:
            continue
        ts = timestamps[idx]
        running = np.maximum.accumulate(ts)
        before = np.concatenate(([start_max], np.maximum(running[:-1], start_max)))
        late[idx] = window_end[idx] <= before - lateness
        new_max[source] = max(start_max, float(running[-1]))
    return late, new_max
