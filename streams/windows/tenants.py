"""Per-tenant usage of a batch: exact partial rows of tenant_windows (pure).

One row per (source partition, window, tenant, model): requests, errors,
input and output tokens. Grouping is one np.unique over packed integer codes
and every sum a bincount, so 100,000 distinct tenants in a batch cost numpy
time, not Python per tenant (their strings are encoded once each, in C-level
joins, when the Native block is built). The model column is the join point
for costs: a price per model and per 1M tokens applies row by row. Events
without a tenant are not in these rows (request_windows has them).

Exactly-once as request_windows (sink.py): the rows carry their source
offsets, the insert carries a dedup token, and a replay skips the messages
whose tenant rows are already durable (``TenantFloor``), whatever cut the
replayed batch has.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from fleetpulse.streams.windows import native
from fleetpulse.streams.windows.aggregate import group_codes
from fleetpulse.streams.windows.columns import Coded, RequestColumns
from fleetpulse.streams.windows.grid import window_starts
from fleetpulse.streams.windows.rows import SourceSpan, source_columns

TENANT_COLUMNS = ("window_start", "window_seconds", "tenant", "model", "requests", "errors", "input_tokens",
                  "output_tokens", "cache_read_tokens", "source_topic", "source_partition", "offset_first", "offset_last",
                  "max_event_time")


@dataclasses.dataclass
class TenantBlock:
    """The tenant rows of one batch, as columns."""

    source: np.ndarray
    window_start: np.ndarray
    tenant: Coded
    model: Coded
    requests: np.ndarray
    errors: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    cache_read_tokens: np.ndarray  # of the input tokens: what tenant_cost prices at the cached price

    def __len__(self) -> int:
        return len(self.source)

    @classmethod
    def concat(cls, parts: Sequence["TenantBlock"], sources: Sequence[np.ndarray]) -> "TenantBlock":
        """The rows of each part one after the other; ``sources[k]`` maps part
        k's source indices to the merged batch's."""
        def cat(name: str) -> np.ndarray:
            return np.concatenate([getattr(p, name) for p in parts])

        return cls(source=np.concatenate([remap[p.source] for p, remap in zip(parts, sources)]),
                   window_start=cat("window_start"), tenant=Coded.concat([p.tenant for p in parts]),
                   model=Coded.concat([p.model for p in parts]), requests=cat("requests"), errors=cat("errors"),
                   input_tokens=cat("input_tokens"), output_tokens=cat("output_tokens"),
                   cache_read_tokens=cat("cache_read_tokens"))

    def rows(self) -> list[tuple]:
        """(window_start, tenant, model, requests, errors, input, output) per row: for reading and tests."""
        return list(zip(self.window_start.tolist(), map(self.tenant.values.__getitem__, self.tenant.codes.tolist()),
                        map(self.model.values.__getitem__, self.model.codes.tolist()), self.requests.tolist(),
                        self.errors.tolist(), self.input_tokens.tolist(), self.output_tokens.tolist()))

    def window_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact requests per (window, tenant) of the batch, all sources and
        models summed: (window starts, tenant codes, counts); numpy only."""
        if not len(self):
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        group, first = group_codes(self.window_start, self.tenant.codes)
        counts = np.bincount(group, weights=self.requests, minlength=len(first))
        return self.window_start[first], self.tenant.codes[first], np.rint(counts).astype(np.int64)


def aggregate_tenants(cols: RequestColumns, window_seconds: int, sources: np.ndarray | None = None,
                      keep: np.ndarray | None = None) -> TenantBlock:
    """Group the events that name a tenant (and are in ``keep``, a bool mask)
    by (source, window, tenant, model) and sum each group."""
    n = len(cols)
    sources = np.zeros(n, dtype=np.int64) if sources is None else sources
    tenant = cols.tenant if cols.tenant is not None else Coded(np.zeros(n, dtype=np.int64), [""])
    named = np.array([bool(v) for v in tenant.values], dtype=bool)[tenant.codes] if n else np.zeros(0, dtype=bool)
    rows = np.flatnonzero(named if keep is None else named & keep)
    starts = window_starts(cols.timestamp[rows], window_seconds)
    if len(rows):
        group, first = group_codes(sources[rows], starts, tenant.codes[rows], cols.model.codes[rows])
    else:
        group, first = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    n_groups = len(first)

    def total(values: np.ndarray) -> np.ndarray:
        return np.rint(np.bincount(group, weights=values[rows], minlength=n_groups)).astype(np.int64)

    return TenantBlock(
        source=sources[rows][first], window_start=starts[first],
        tenant=Coded(tenant.codes[rows][first], tenant.values),
        model=Coded(cols.model.codes[rows][first], cols.model.values),
        requests=np.bincount(group, minlength=n_groups).astype(np.int64),
        errors=np.bincount(group[cols.is_error[rows]], minlength=n_groups).astype(np.int64),
        input_tokens=total(cols.input_tokens), output_tokens=total(cols.output_tokens),
        cache_read_tokens=total(cols.cache_read_tokens))


def tenant_block(block: TenantBlock, window_seconds: int, spans: list[SourceSpan]) -> bytes:
    """The rows as one ClickHouse Native block with the TENANT_COLUMNS."""
    n = len(block)
    data = {
        "window_start": ("DateTime", native.numbers(block.window_start, "<u4")),
        "window_seconds": ("UInt32", native.numbers(np.full(n, window_seconds), "<u4")),
        "tenant": ("String", native.strings(block.tenant.values, block.tenant.codes)),
        "model": ("String", native.strings(block.model.values, block.model.codes)),
        "requests": ("UInt64", native.numbers(block.requests, "<u8")),
        "errors": ("UInt64", native.numbers(block.errors, "<u8")),
        "input_tokens": ("UInt64", native.numbers(block.input_tokens, "<u8")),
        "output_tokens": ("UInt64", native.numbers(block.output_tokens, "<u8")),
        "cache_read_tokens": ("UInt64", native.numbers(block.cache_read_tokens, "<u8")),
        **source_columns(block.source, spans),
    }
    return native.block([(name, *data[name]) for name in TENANT_COLUMNS], n)


def tenant_keep(partitions: np.ndarray, offsets: np.ndarray, per_message: np.ndarray, topic: str,
                floor: dict[tuple[str, int], int]) -> np.ndarray | None:
    """Per event: whether its message is past what tenant_windows already
    holds (``floor``: next offset per partition). None when all are."""
    if not floor:
        return None
    first = np.zeros(len(partitions), dtype=np.int64)
    for p in np.unique(partitions).tolist():
        first[partitions == p] = floor.get((topic, p), 0)
    fresh = offsets >= first
    return None if fresh.all() else np.repeat(fresh, per_message)
