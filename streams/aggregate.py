"""Stage 1: a batch of request events -> partial aggregates per
(source partition, window, model, node, GPU, late).

Pure functions, no I/O, and no Python per event: columns are read out of the
decoded structs with C-level ``map``; strings become integer codes (one dict
entry per distinct value); window assignment, grouping, counts, sums and
sketches are numpy over the whole batch. Python runs per group and per
distinct value only. Grouping by source partition keeps every row attributable
to one offset range, which is what makes the writes exactly-once (see
streams/sink.py).
"""

from __future__ import annotations

import dataclasses
import math
from operator import attrgetter
from typing import Sequence

import numpy as np

from fleetpulse.streams.sketch import bucket_indices


@dataclasses.dataclass(frozen=True)
class Coded:
    """A categorical column: ``values[codes[i]]`` is event i's value."""

    codes: np.ndarray
    values: list

    @classmethod
    def of(cls, column: list) -> "Coded":
        values = list(dict.fromkeys(column))  # distinct, in first-seen order: C-level
        index = {v: i for i, v in enumerate(values)}
        return cls(np.fromiter(map(index.__getitem__, column), dtype=np.int64, count=len(column)), values)

    def relabel(self, rename) -> "Coded":
        """The same column with each distinct value passed through ``rename``
        (values that rename alike merge)."""
        return Coded.of_codes(self.codes, [rename(v) for v in self.values])

    @classmethod
    def of_codes(cls, codes: np.ndarray, values: list) -> "Coded":
        """``values`` may repeat: re-code so each distinct value has one code."""
        merged = cls.of(values)
        return cls(merged.codes[codes] if len(codes) else codes, merged.values)

    def __len__(self) -> int:
        return len(self.codes)


OUTCOMES = ["answered", "empty", "refused", "error"]


@dataclasses.dataclass
class RequestColumns:
    """Validated request events as columns. Missing TTFT/TPOT/queue time are NaN."""

    timestamp: np.ndarray
    model: Coded
    node: Coded
    gpu: Coded  # "" when absent
    duration: np.ndarray
    ttft: np.ndarray
    tpot: np.ndarray
    queue_time: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    error_type: Coded  # None on success
    is_error: np.ndarray
    operation: Coded  # "unknown" when absent
    finish_reason: Coded  # the first reason, "none" when absent
    outcome: Coded  # OUTCOMES
    trace_id: list[str]

    def __len__(self) -> int:
        return len(self.timestamp)

    def take(self, keep: np.ndarray) -> "RequestColumns":
        """Only the events where ``keep`` (a bool mask) is true."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                out[f.name] = value[keep]
            elif isinstance(value, Coded):
                out[f.name] = Coded(value.codes[keep], value.values)
            else:
                out[f.name] = [v for v, k in zip(value, keep.tolist()) if k]
        return RequestColumns(**out)


_FIELDS = ("timestamp", "model", "node", "gpu", "duration", "ttft", "tpot", "queue_time", "input_tokens",
           "output_tokens", "error_type", "operation", "finish_reasons", "trace_id")


def to_columns(events: Sequence) -> RequestColumns:
    """Columns of decoded request events (schemas.fast.RequestEvent, or anything
    with its attribute names)."""
    n = len(events)
    col = {name: list(map(attrgetter(name), events)) for name in _FIELDS}  # C-level, one pass per field

    def floats(name: str) -> np.ndarray:  # None (absent) becomes NaN
        return np.array(col[name], dtype=np.float64) if n else np.zeros(0)

    def ints(name: str) -> np.ndarray:
        return np.array(col[name], dtype=np.int64) if n else np.zeros(0, dtype=np.int64)

    error_type = Coded.of(col["error_type"])
    is_error = np.array([v is not None for v in error_type.values], dtype=bool)[error_type.codes] if n \
        else np.zeros(0, dtype=bool)
    reasons = Coded.of(col["finish_reasons"])
    output_tokens = ints("output_tokens")
    refused = np.array([bool(r) and "content_filter" in r for r in reasons.values], dtype=bool)
    outcome = np.where(is_error, 3, np.where(output_tokens == 0, 1, np.where(
        refused[reasons.codes] if n else np.zeros(0, dtype=bool), 2, 0))).astype(np.int64)
    return RequestColumns(
        timestamp=floats("timestamp"),
        model=Coded.of(col["model"]),
        node=Coded.of(col["node"]),
        gpu=Coded.of(col["gpu"]).relabel(lambda v: v or ""),
        duration=floats("duration"),
        ttft=floats("ttft"),
        tpot=floats("tpot"),
        queue_time=floats("queue_time"),
        input_tokens=ints("input_tokens"),
        output_tokens=output_tokens,
        error_type=error_type,
        is_error=is_error,
        operation=Coded.of(col["operation"]).relabel(lambda v: v or "unknown"),
        finish_reason=reasons.relabel(lambda r: r[0] if r else "none"),
        outcome=Coded(outcome, OUTCOMES),
        trace_id=col["trace_id"],
    )


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


def group_codes(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One dense group number per distinct combination of integer key columns,
    and the first event of each group. Usually one np.unique over the keys
    packed into one int64; when their ranges are too wide to pack (a hostile
    batch), keys are combined two at a time and re-coded instead, so the
    combined number never overflows."""
    keys = [k - k.min() for k in keys] if len(keys[0]) else list(keys)
    spans = [int(k.max()) + 1 if len(k) else 1 for k in keys]
    if math.prod(spans) < 2**62:
        combined = np.zeros(len(keys[0]), dtype=np.int64)
        for key, span in zip(keys, spans):
            combined = combined * span + key
        _, first, group = np.unique(combined, return_index=True, return_inverse=True)
        return group.astype(np.int64).reshape(-1), first
    group = np.zeros(len(keys[0]), dtype=np.int64)
    for key, span in zip(keys, spans):
        _, group = np.unique(group * span + key, return_inverse=True)
        group = group.astype(np.int64).reshape(-1)
    _, first = np.unique(group, return_index=True)
    return group, first


def aggregate(cols: RequestColumns, window_seconds: int, sources: np.ndarray | None = None,
              late: np.ndarray | None = None) -> list[Partial]:
    """Group a batch by (source, window, model, node, GPU, late) and reduce each group."""
    n = len(cols)
    if n == 0:
        return []
    sources = np.zeros(n, dtype=np.int64) if sources is None else sources
    late = np.zeros(n, dtype=bool) if late is None else late
    starts = window_starts(cols.timestamp, window_seconds)
    group, first = group_codes(sources, starts, cols.model.codes, cols.node.codes, cols.gpu.codes,
                               late.astype(np.int64))
    n_groups = len(first)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=values, minlength=n_groups)

    requests = np.bincount(group, minlength=n_groups)
    errors = np.bincount(group[cols.is_error], minlength=n_groups)
    in_tok = np.bincount(group, weights=cols.input_tokens, minlength=n_groups)
    out_tok = np.bincount(group, weights=cols.output_tokens, minlength=n_groups)
    lat_sum = total(cols.duration)
    hist = [_histograms(group, values, n_groups) for values in (
        cols.duration, cols.ttft, cols.tpot, cols.input_tokens.astype(np.float64),
        cols.output_tokens.astype(np.float64), cols.queue_time)]
    err_types = _categories(group, cols.error_type, n_groups, cols.is_error)
    operations = _categories(group, cols.operation, n_groups)
    finishes = _categories(group, cols.finish_reason, n_groups)
    outcomes = _categories(group, cols.outcome, n_groups)
    keys = zip(sources[first].tolist(), starts[first].tolist(), cols.model.codes[first].tolist(),
               cols.node.codes[first].tolist(), cols.gpu.codes[first].tolist(), late[first].tolist())
    return [
        Partial(
            source=source, window_start=start, model=cols.model.values[model], node=cols.node.values[node],
            gpu=cols.gpu.values[gpu], late=is_late, requests=int(requests[g]), errors=int(errors[g]),
            errors_by_type=err_types[g], input_tokens=int(in_tok[g]), output_tokens=int(out_tok[g]),
            latency_sum=float(lat_sum[g]), latency_buckets=hist[0][g], ttft_buckets=hist[1][g],
            tpot_buckets=hist[2][g], input_tokens_buckets=hist[3][g], output_tokens_buckets=hist[4][g],
            queue_buckets=hist[5][g], operations=operations[g], finish_reasons=finishes[g], outcomes=outcomes[g],
        )
        for g, (source, start, model, node, gpu, is_late) in enumerate(keys)
    ]


def _sparse(group: np.ndarray, key: np.ndarray, n_groups: int, labels: np.ndarray) -> list[dict]:
    """Per-group ``{labels[key]: count}`` maps from one np.unique over (group, key);
    Python runs per group (one dict from two slices), not per entry."""
    if len(group) == 0:
        return [{} for _ in range(n_groups)]
    span = int(key.max()) + 1
    uniq, counts = np.unique(group * span + key, return_counts=True)
    bounds = np.searchsorted(uniq // span, np.arange(n_groups + 1)).tolist()
    names, counts = labels[uniq % span].tolist(), counts.tolist()
    return [dict(zip(names[lo:hi], counts[lo:hi])) for lo, hi in zip(bounds, bounds[1:])]


_BUCKET_LABELS = np.arange(65536, dtype=np.int64) - 32768


def _histograms(group: np.ndarray, values: np.ndarray, n_groups: int) -> list[dict[int, int]]:
    """Per-group sparse bucket counts; NaN (value absent) is skipped."""
    present = ~np.isnan(values)
    buckets = bucket_indices(values[present]).astype(np.int64) + 32768  # Int16 -> 0..65535
    return _sparse(group[present], buckets, n_groups, _BUCKET_LABELS)


def _categories(group: np.ndarray, column: Coded, n_groups: int, rows: np.ndarray | None = None) -> list[dict]:
    """Per-group counts of a categorical column (only where ``rows``, a bool mask, is true)."""
    labels = np.empty(len(column.values), dtype=object)
    labels[:] = column.values
    if rows is None:
        return _sparse(group, column.codes, n_groups, labels)
    return _sparse(group[rows], column.codes[rows], n_groups, labels)
