"""Stage 1: a batch of request events -> partial aggregates per
(source partition, window, model, node, GPU, late).

Pure functions, no I/O, and no Python per event: on the batch's columns
(columns.py), window assignment, grouping, counts, sums and sketches are
numpy over the whole batch. Python runs per group and per
distinct value only. Grouping by source partition keeps every row attributable
to one offset range, which is what makes the writes exactly-once (see
streams/windows/sink.py).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from fleetpulse.streams.windows.columns import Coded, RequestColumns
from fleetpulse.streams.windows.grid import window_starts
from fleetpulse.streams.windows.sketch import bucket_indices


@dataclasses.dataclass
class Partial:
    """One row of a WindowBlock as Python values: for reading and tests. The
    worker writes blocks to ClickHouse without building these."""

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
    analysed: int = 0
    refusals: int = 0
    empty_outputs: int = 0
    format_checked: int = 0
    format_failures: int = 0
    cache_read_tokens: int = 0
    repetition_buckets: dict[int, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SparseMaps:
    """One ``{label: count}`` map per group, as three arrays: group g's entries
    are ``keys[ends[g-1]:ends[g]]`` and ``counts[...]``; ``labels[key]`` is
    the map key (a bucket index or a category). This is how ClickHouse's
    Native format lays out a Map column, so it is written without a dict."""

    ends: np.ndarray
    keys: np.ndarray
    counts: np.ndarray
    labels: np.ndarray

    @classmethod
    def concat(cls, parts: Sequence["SparseMaps"]) -> "SparseMaps":
        """The groups of each part one after the other. Parts that share their
        labels (the bucket maps) keep them; categories are laid side by side."""
        entries = np.cumsum([0] + [len(p.keys) for p in parts[:-1]])
        ends = np.concatenate([p.ends + shift for p, shift in zip(parts, entries.tolist())])
        counts = np.concatenate([p.counts for p in parts])
        if all(p.labels is parts[0].labels for p in parts):
            return cls(ends, np.concatenate([p.keys for p in parts]), counts, parts[0].labels)
        shifts = np.cumsum([0] + [len(p.labels) for p in parts[:-1]])
        keys = np.concatenate([p.keys + shift for p, shift in zip(parts, shifts.tolist())])
        return cls(ends, keys, counts, np.concatenate([p.labels for p in parts]))

    def dicts(self) -> list[dict]:
        names, counts, ends = self.labels[self.keys].tolist(), self.counts.tolist(), self.ends.tolist()
        return [dict(zip(names[lo:hi], counts[lo:hi])) for lo, hi in zip([0, *ends], ends)]


#: The bucket maps of a window row, in WINDOW_COLUMNS order (streams/windows/rows.py).
HISTOGRAMS = ("latency_buckets", "ttft_buckets", "tpot_buckets", "input_tokens_buckets", "output_tokens_buckets",
              "queue_buckets", "repetition_buckets")
#: The quality counts of a window row (docs/quality.md), in WINDOW_COLUMNS order.
QUALITY = ("analysed", "refusals", "empty_outputs", "format_checked", "format_failures", "cache_read_tokens")
CATEGORIES = ("errors_by_type", "operations", "finish_reasons", "outcomes")


@dataclasses.dataclass
class WindowBlock:
    """The partial aggregates of one batch, one row per group of (source
    partition, window, model, node, GPU, late), as columns."""

    source: np.ndarray  # index into the batch's source partitions
    window_start: np.ndarray
    model: Coded
    node: Coded
    gpu: Coded
    late: np.ndarray
    requests: np.ndarray
    errors: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    latency_sum: np.ndarray
    maps: dict[str, SparseMaps]
    quality: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # QUALITY -> count per group

    def __len__(self) -> int:
        return len(self.source)

    @classmethod
    def concat(cls, parts: Sequence["WindowBlock"], sources: Sequence[np.ndarray]) -> "WindowBlock":
        """The rows of each part one after the other; ``sources[k]`` maps part
        k's source indices to the merged batch's."""
        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])

        return cls(
            source=np.concatenate([remap[p.source] for p, remap in zip(parts, sources)]),
            window_start=cat("window_start"), model=Coded.concat([p.model for p in parts]),
            node=Coded.concat([p.node for p in parts]), gpu=Coded.concat([p.gpu for p in parts]), late=cat("late"),
            requests=cat("requests"), errors=cat("errors"), input_tokens=cat("input_tokens"),
            output_tokens=cat("output_tokens"), latency_sum=cat("latency_sum"),
            maps={name: SparseMaps.concat([p.maps[name] for p in parts]) for name in parts[0].maps},
            quality={name: np.concatenate([p.quality[name] for p in parts]) for name in parts[0].quality})

    def partials(self) -> list[Partial]:
        """The rows as Python values (Python per row: for reading and tests)."""
        maps = {name: m.dicts() for name, m in self.maps.items()}
        columns = zip(self.source.tolist(), self.window_start.tolist(), self.model.codes.tolist(),
                      self.node.codes.tolist(), self.gpu.codes.tolist(), self.late.tolist(), self.requests.tolist(),
                      self.errors.tolist(), self.input_tokens.tolist(), self.output_tokens.tolist(),
                      self.latency_sum.tolist())
        quality = {name: self.quality[name].tolist() for name in QUALITY}
        return [Partial(source, start, self.model.values[model], self.node.values[node], self.gpu.values[gpu],
                        bool(late), requests, errors, maps["errors_by_type"][g], in_tok, out_tok, lat_sum,
                        *(maps[name][g] for name in HISTOGRAMS[:-1]), *(maps[name][g] for name in CATEGORIES[1:]),
                        *(quality[name][g] for name in QUALITY), maps["repetition_buckets"][g])
                for g, (source, start, model, node, gpu, late, requests, errors, in_tok, out_tok, lat_sum)
                in enumerate(columns)]


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
              late: np.ndarray | None = None) -> WindowBlock:
    """Group a batch by (source, window, model, node, GPU, late) and reduce each group."""
    n = len(cols)
    sources = np.zeros(n, dtype=np.int64) if sources is None else sources
    late = np.zeros(n, dtype=bool) if late is None else late
    starts = window_starts(cols.timestamp, window_seconds)
    if n:
        group, first = group_codes(sources, starts, cols.model.codes, cols.node.codes, cols.gpu.codes,
                                   late.astype(np.int64))
    else:
        group, first = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    n_groups = len(first)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=values, minlength=n_groups)

    maps = {name: _histogram(group, values, n_groups) for name, values in zip(HISTOGRAMS, (
        cols.duration, cols.ttft, cols.tpot, cols.input_tokens.astype(np.float64),
        cols.output_tokens.astype(np.float64), cols.queue_time, cols.repetition))}
    maps["errors_by_type"] = _categories(group, cols.error_type, n_groups, cols.is_error)
    maps["operations"] = _categories(group, cols.operation, n_groups)
    maps["finish_reasons"] = _categories(group, cols.finish_reason, n_groups)
    maps["outcomes"] = _categories(group, cols.outcome, n_groups)
    return WindowBlock(
        source=sources[first], window_start=starts[first],
        model=Coded(cols.model.codes[first], cols.model.values), node=Coded(cols.node.codes[first], cols.node.values),
        gpu=Coded(cols.gpu.codes[first], cols.gpu.values), late=late[first],
        requests=np.bincount(group, minlength=n_groups), errors=np.bincount(group[cols.is_error], minlength=n_groups),
        input_tokens=np.rint(total(cols.input_tokens)).astype(np.int64),
        output_tokens=np.rint(total(cols.output_tokens)).astype(np.int64),
        latency_sum=total(cols.duration), maps=maps, quality=_quality(group, cols, n_groups),
    )


def _quality(group: np.ndarray, cols: RequestColumns, n_groups: int) -> dict[str, np.ndarray]:
    """Per-group counts of the quality signals (a NaN flag is no event's: it compares false)."""
    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(group[mask], minlength=n_groups).astype(np.int64)

    return {
        "analysed": count(~np.isnan(cols.refusal)),
        "refusals": count(cols.refusal == 1),
        "empty_outputs": count(cols.empty == 1),
        "format_checked": count(~np.isnan(cols.format_ok)),
        "format_failures": count(cols.format_ok == 0),
        "cache_read_tokens": np.rint(np.bincount(group, weights=cols.cache_read_tokens, minlength=n_groups)
                                     ).astype(np.int64),
    }


def _sparse(group: np.ndarray, key: np.ndarray, n_groups: int, labels: np.ndarray) -> SparseMaps:
    """Per-group counts of ``key``, sorted by group, which is the layout of a
    Map column: a bincount over (group, key) when that grid is small (the
    usual case: a few hundred buckets in use), else one np.unique."""
    if len(group) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return SparseMaps(np.zeros(n_groups, dtype=np.int64), empty, empty, labels)
    low = int(key.min())
    span = int(key.max()) - low + 1
    combined = group * span + (key - low)
    if n_groups * span <= max(4 * len(group), 1 << 16):
        grid = np.bincount(combined, minlength=n_groups * span)
        uniq = np.flatnonzero(grid)
        counts = grid[uniq]
    else:
        uniq, counts = np.unique(combined, return_counts=True)
    ends = np.searchsorted(uniq // span, np.arange(1, n_groups + 1))
    return SparseMaps(ends.astype(np.int64), uniq % span + low, counts.astype(np.int64), labels)


_BUCKET_LABELS = np.arange(65536, dtype=np.int64) - 32768


def _histogram(group: np.ndarray, values: np.ndarray, n_groups: int) -> SparseMaps:
    """Per-group sparse bucket counts; NaN (value absent) is skipped."""
    present = ~np.isnan(values)
    buckets = bucket_indices(values[present]).astype(np.int64) + 32768  # Int16 -> 0..65535
    return _sparse(group[present], buckets, n_groups, _BUCKET_LABELS)


def _categories(group: np.ndarray, column: Coded, n_groups: int, rows: np.ndarray | None = None) -> SparseMaps:
    """Per-group counts of a categorical column (only where ``rows``, a bool mask, is true)."""
    labels = np.empty(len(column.values), dtype=object)
    labels[:] = column.values
    if rows is None:
        return _sparse(group, column.codes, n_groups, labels)
    return _sparse(group[rows], column.codes[rows], n_groups, labels)
