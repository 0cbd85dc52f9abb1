"""Event-time watermarks per source partition, and which events are too late (pure).

The watermark of a partition is the newest event time seen in it so far minus
the allowed lateness. A window [start, start + W) closes when the watermark
reaches its end; an event whose window has closed is *late*: it still counts,
but is stored as a correction (``late = 1``) and counted in a metric.

Watermarks are per partition and follow offset order, so whether an event is
late depends only on the partition's own history, never on how messages were
cut into batches or which worker read them. That keeps the classification
identical when a batch is replayed after a crash.
"""

from __future__ import annotations

import dataclasses

import numpy as np

NO_EVENT_TIME = float("-inf")


@dataclasses.dataclass(frozen=True)
class PartitionProgress:
    """How far a partition is durable: the next offset to write, and the newest
    event time among everything written so far."""

    next_offset: int = 0
    max_event_time: float = NO_EVENT_TIME


def closed_until(ch, step: int, lateness: float, include_gpu: bool = False) -> int | None:
    """The start of the newest window the watermark has closed (its end is at or
    before the newest event time written minus ``lateness``), or None before any
    data. With ``include_gpu`` the watermark follows whichever stream is newer:
    requests or GPU samples (GPU alert rules need windows without requests)."""
    requests = "(SELECT max(max_event_time) FROM request_windows WHERE window_seconds = {w:UInt32})"
    gpu = "(SELECT toFloat64(max(timestamp)) FROM gpu_samples)"
    sql = f"SELECT greatest({requests}, {gpu})" if include_gpu else f"SELECT {requests}"
    high = ch.query(sql, parameters={"w": step}).result_rows[0][0]
    if high is None or high != high or high <= 0 or high == float("inf"):
        return None
    return int(((high - lateness) // step) * step) - step


def late_flags(timestamps: np.ndarray, sources: np.ndarray, prior_max: list[float],
               window_seconds: int, lateness: float) -> tuple[np.ndarray, list[float]]:
    """For events in offset order, each tagged with its source index, return
    (is_late per event, the new max event time per source).

    An event is judged against the watermark *before* it: the max of its
    partition's earlier events (and ``prior_max``) minus ``lateness``.
    """
    late = np.zeros(len(timestamps), dtype=bool)
    new_max = list(prior_max)
    window_end = (np.floor(timestamps / window_seconds) + 1) * window_seconds
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
