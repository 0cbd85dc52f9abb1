"""Stage 1: a batch of request events -> partial aggregates per
(source partition, window, model, node, GPU, late).

Pure functions, no I/O. Window assignment and all per-batch math is numpy; the
only Python loop is the one that turns validated event dicts into columns.
Grouping by source partition keeps every row attributable to one offset range,
which is what makes the writes exactly-once (see streams/sink.py).
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from fleetpulse.streams.sketch import bucket_indices

_DURATION = "gen_ai.server.request.duration"
_TTFT = "gen_ai.server.time_to_first_token"
_TPOT = "gen_ai.server.time_per_output_token"


@dataclasses.dataclass
class RequestColumns:
    """Validated request events as columns. Missing TTFT/TPOT are NaN."""

    timestamp: np.ndarray
    model: list[str]
    node: list[str]
    duration: np.ndarray
    ttft: np.ndarray
    tpot: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    error_type: list[str | None]
    queue_time: np.ndarray
    operation: list[str]
    finish_reason: list[str]
    outcome: list[str]
    trace_id: list[str]
    gpu: list[str]

    def __len__(self) -> int:
        return len(self.model)


def to_columns(events: list[dict]) -> RequestColumns:
    nan = float("nan")

    def col(name: str) -> np.ndarray:
        return np.array([nan if (v := e.get(name)) is None else v for e in events], dtype=np.float64)

    return RequestColumns(
        timestamp=np.array([e["timestamp"] for e in events], dtype=np.float64),
        model=[e["gen_ai.request.model"] for e in events],
        node=[e["host.name"] for e in events],
        duration=np.array([e[_DURATION] for e in events], dtype=np.float64),
        ttft=col(_TTFT),
        tpot=col(_TPOT),
        input_tokens=np.array([e["gen_ai.usage.input_tokens"] for e in events], dtype=np.int64),
        output_tokens=np.array([e["gen_ai.usage.output_tokens"] for e in events], dtype=np.int64),
        error_type=[e.get("error.type") for e in events],
        queue_time=col("fleetpulse.queue_time"),
        operation=[e.get("gen_ai.operation.name") or "unknown" for e in events],
        finish_reason=[_first(e.get("gen_ai.response.finish_reasons")) for e in events],
        outcome=[_outcome(e) for e in events],
        trace_id=[e["trace_id"] for e in events],
        gpu=[e.get("gpu.id") or "" for e in events],
    )


def _first(reasons: list[str] | None) -> str:
    return reasons[0] if reasons else "none"


def _outcome(event: dict) -> str:
    """Model-output drift: the share of empty or refused answers moves when a model changes."""
    if event.get("error.type") is not None:
        return "error"
    if event["gen_ai.usage.output_tokens"] == 0:
        return "empty"
    if "content_filter" in (event.get("gen_ai.response.finish_reasons") or ()):
        return "refused"
    return "answered"


@dataclasses.dataclass
class Partial:
    """Mergeable aggregate of one group from one batch. ``source`` indexes the
    batch's list of source partitions."""

    source: int
    window_start: int
    model: str
    node: str
    gpu: str
    late: bool
    requests: int
    errors: int
    errors_by_type: dict[str, int]
    input_tokens: int
    output_tokens: int
    latency_sum: float
    latency_buckets: dict[int, int]
    ttft_buckets: dict[int, int]
    tpot_buckets: dict[int, int]
    input_tokens_buckets: dict[int, int]
    output_tokens_buckets: dict[int, int]
    queue_buckets: dict[int, int]
    operations: dict[str, int]
    finish_reasons: dict[str, int]
    outcomes: dict[str, int]


def window_starts(timestamps: np.ndarray, window_seconds: int) -> np.ndarray:
    """Event-time tumbling windows: the epoch second each event's window starts at."""
    return (np.floor(timestamps / window_seconds) * window_seconds).astype(np.int64)


def aggregate(cols: RequestColumns, window_seconds: int, sources: np.ndarray | None = None,
              late: np.ndarray | None = None) -> list[Partial]:
    """Group a batch by (source, window, model, node, GPU, late) and reduce each group."""
    n = len(cols)
    if n == 0:
        return []
    sources = np.zeros(n, dtype=np.int64) if sources is None else sources
    late = np.zeros(n, dtype=bool) if late is None else late
    keys = list(zip(sources.tolist(), window_starts(cols.timestamp, window_seconds).tolist(),
                    cols.model, cols.node, cols.gpu, late.tolist()))
    codes: dict[tuple, int] = {}
    group = np.fromiter((codes.setdefault(k, len(codes)) for k in keys), dtype=np.int64, count=n)
    n_groups = len(codes)
    is_error = np.array([t is not None for t in cols.error_type], dtype=bool)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=values, minlength=n_groups)

    requests = np.bincount(group, minlength=n_groups)
    errors, in_tok, out_tok = total(is_error), total(cols.input_tokens), total(cols.output_tokens)
    lat_sum = total(cols.duration)
    lat_h = _histograms(group, cols.duration, n_groups)
    ttft_h = _histograms(group, cols.ttft, n_groups)
    tpot_h = _histograms(group, cols.tpot, n_groups)
    err_types = _categories(group, cols.error_type, n_groups, np.flatnonzero(is_error))
    in_h = _histograms(group, cols.input_tokens.astype(np.float64), n_groups)
    out_h = _histograms(group, cols.output_tokens.astype(np.float64), n_groups)
    queue_h = _histograms(group, cols.queue_time, n_groups)
    operations = _categories(group, cols.operation, n_groups)
    finishes = _categories(group, cols.finish_reason, n_groups)
    outcomes = _categories(group, cols.outcome, n_groups)
    return [
        Partial(
            source=key[0], window_start=key[1], model=key[2], node=key[3], gpu=key[4], late=key[5],
            requests=int(requests[g]), errors=int(errors[g]), errors_by_type=err_types[g],
            input_tokens=int(in_tok[g]), output_tokens=int(out_tok[g]), latency_sum=float(lat_sum[g]),
            latency_buckets=lat_h[g], ttft_buckets=ttft_h[g], tpot_buckets=tpot_h[g],
            input_tokens_buckets=in_h[g], output_tokens_buckets=out_h[g], queue_buckets=queue_h[g],
            operations=operations[g], finish_reasons=finishes[g], outcomes=outcomes[g],
        )
        for key, g in codes.items()
    ]


def _histograms(group: np.ndarray, values: np.ndarray, n_groups: int) -> list[dict[int, int]]:
    """Per-group sparse bucket counts; NaN (value absent) is skipped."""
    present = ~np.isnan(values)
    buckets = bucket_indices(values[present]).astype(np.int64)
    # One int64 key per (group, bucket) so a single np.unique counts everything.
    combined = group[present] * 65536 + (buckets + 32768)
    uniq, counts = np.unique(combined, return_counts=True)
    out: list[dict[int, int]] = [{} for _ in range(n_groups)]
    for key, count in zip(uniq.tolist(), counts.tolist()):
        out[key >> 16][(key & 0xFFFF) - 32768] = count
    return out


def _categories(group: np.ndarray, values: list, n_groups: int, rows: np.ndarray | None = None) -> list[dict[str, int]]:
    """Per-group counts of a categorical column (only ``rows``, when given)."""
    out: list[Counter] = [Counter() for _ in range(n_groups)]
    for i in (range(len(values)) if rows is None else rows.tolist()):
        out[group[i]][values[i]] += 1
    return [dict(c) for c in out]
