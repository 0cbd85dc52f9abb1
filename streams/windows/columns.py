"""Decoded request events as columns (pure).

Columns are read out of the decoded structs with C-level ``map``, and strings
become integer codes (one dict entry per distinct value), so what follows
(windows, groups, sketches, the Prometheus export) is numpy over the batch.
"""

from __future__ import annotations

import dataclasses
from operator import attrgetter
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


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

    @classmethod
    def concat(cls, parts: Sequence["Coded"]) -> "Coded":
        """The columns one after the other, each distinct value with one code."""
        shifts = np.cumsum([0] + [len(p.values) for p in parts[:-1]])
        codes = np.concatenate([p.codes + shift for p, shift in zip(parts, shifts.tolist())])
        return cls.of_codes(codes, [v for p in parts for v in p.values])

    def __len__(self) -> int:
        return len(self.codes)


class Strings:
    """A string column read only here and there (trace ids, for exemplars):
    kept as it came (a list, or an Arrow array), each value made a Python
    str only when it is read."""

    def __init__(self, column) -> None:
        self._column = column

    def at(self, rows: np.ndarray) -> list[str]:
        """The values at ``rows`` (positions)."""
        if isinstance(self._column, list):
            return [self._column[i] for i in rows.tolist()]
        return self._column.take(rows).to_pylist()

    def take(self, keep: np.ndarray) -> "Strings":
        """Only the values where ``keep`` (a bool mask) is true."""
        return Strings(self.at(np.flatnonzero(keep)))

    def __len__(self) -> int:
        return len(self._column)

    def __iter__(self):
        return iter(self._column if isinstance(self._column, list) else self._column.to_pylist())


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
    trace_id: Strings
    # Quality signals from the node (docs/quality.md): NaN when the event has none.
    refusal: np.ndarray  # 0/1
    empty: np.ndarray  # 0/1
    repetition: np.ndarray  # 0..1
    format_ok: np.ndarray  # 0/1; NaN also when no format was asked for
    cache_read_tokens: np.ndarray  # 0 when absent
    tenant: Coded | None = None  # "" when absent (fleetpulse.tenant); None: built without one

    def __len__(self) -> int:
        return len(self.timestamp)

    def take(self, keep: np.ndarray) -> "RequestColumns":
        """Only the events where ``keep`` (a bool mask) is true."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                out[f.name] = None
            elif isinstance(value, np.ndarray):
                out[f.name] = value[keep]
            elif isinstance(value, Coded):
                out[f.name] = Coded(value.codes[keep], value.values)
            else:
                out[f.name] = value.take(keep)
        return RequestColumns(**out)


#: Attribute of each column (schemas.fast.RequestEvent) -> its wire name (an Arrow field, schemas.columnar).
_WIRE = {"timestamp": "timestamp", "model": "gen_ai.request.model", "node": "host.name", "gpu": "gpu.id",
         "duration": "gen_ai.server.request.duration", "ttft": "gen_ai.server.time_to_first_token",
         "tpot": "gen_ai.server.time_per_output_token", "queue_time": "fleetpulse.queue_time",
         "input_tokens": "gen_ai.usage.input_tokens", "output_tokens": "gen_ai.usage.output_tokens",
         "error_type": "error.type", "operation": "gen_ai.operation.name",
         "finish_reasons": "gen_ai.response.finish_reasons", "trace_id": "trace_id",
         "refusal": "fleetpulse.output.refusal", "empty": "fleetpulse.output.empty",
         "repetition": "fleetpulse.output.repetition", "format_ok": "fleetpulse.output.format_ok",
         "cache_read_tokens": "gen_ai.usage.cache_read.input_tokens", "tenant": "fleetpulse.tenant"}


@dataclasses.dataclass(frozen=True)
class _Source:
    """How to read each kind of column out of one form of decoded events."""

    floats: Callable[[str], np.ndarray]  # None/null (absent) as NaN
    ints: Callable[[str], np.ndarray]
    coded: Callable[[str], Coded]  # None/null is a value of its own, None
    first_reason: Callable[[], tuple[Coded, np.ndarray]]  # first finish reason ("none"), any content_filter
    trace_ids: Callable[[], Strings]


def to_columns(events: Sequence) -> RequestColumns:
    """Columns of decoded request events (schemas.fast.RequestEvent, or anything
    with its attribute names)."""
    n = len(events)
    col = {name: list(map(attrgetter(name), events)) for name in _WIRE}  # C-level, one pass per field

    def first_reason() -> tuple[Coded, np.ndarray]:
        reasons = Coded.of(col["finish_reasons"])
        refused = np.array([bool(r) and "content_filter" in r for r in reasons.values], dtype=bool)
        return reasons.relabel(lambda r: r[0] if r else "none"), refused[reasons.codes] if n else np.zeros(0, bool)

    return _assemble(_Source(
        floats=lambda name: np.array(col[name], dtype=np.float64) if n else np.zeros(0),
        ints=lambda name: np.array(col[name], dtype=np.int64) if n else np.zeros(0, dtype=np.int64),
        coded=lambda name: Coded.of(col[name]),
        first_reason=first_reason,
        trace_ids=lambda: Strings(col["trace_id"])))


def from_arrow(events) -> RequestColumns:
    """Columns of request events read by schemas.columnar (an Arrow struct
    array with the wire names): numeric columns are Arrow's own buffers, and
    strings are dictionary-encoded in C++, so no Python runs per event."""
    if not len(events):
        return to_columns([])

    def column(name: str):
        return events.field(_WIRE[name])

    return _assemble(_Source(
        floats=lambda name: column(name).to_numpy(zero_copy_only=False).astype(np.float64, copy=False),
        ints=lambda name: column(name).to_numpy(zero_copy_only=False).astype(np.int64, copy=False),
        coded=lambda name: _coded(column(name)),
        first_reason=lambda: _first_reasons(column("finish_reasons")),
        trace_ids=lambda: Strings(column("trace_id"))))


def _assemble(read: _Source) -> RequestColumns:
    error_type = read.coded("error_type")
    is_error = np.array([v is not None for v in error_type.values], dtype=bool)[error_type.codes]
    finish_reason, refused = read.first_reason()
    output_tokens = read.ints("output_tokens")
    outcome = np.where(is_error, 3, np.where(output_tokens == 0, 1, np.where(refused, 2, 0))).astype(np.int64)
    return RequestColumns(
        timestamp=read.floats("timestamp"),
        model=read.coded("model"),
        node=read.coded("node"),
        gpu=read.coded("gpu").relabel(lambda v: v or ""),
        duration=read.floats("duration"),
        ttft=read.floats("ttft"),
        tpot=read.floats("tpot"),
        queue_time=read.floats("queue_time"),
        input_tokens=read.ints("input_tokens"),
        output_tokens=output_tokens,
        error_type=error_type,
        is_error=is_error,
        operation=read.coded("operation").relabel(lambda v: v or "unknown"),
        finish_reason=finish_reason,
        outcome=Coded(outcome, OUTCOMES),
        trace_id=read.trace_ids(),
        refusal=read.floats("refusal"),
        empty=read.floats("empty"),
        repetition=read.floats("repetition"),
        format_ok=read.floats("format_ok"),
        cache_read_tokens=np.nan_to_num(read.floats("cache_read_tokens")),
        tenant=_absent_as_empty(read.coded("tenant")),
    )


def _absent_as_empty(column: Coded) -> Coded:
    """None (absent) as "": no valid value is empty, so nothing merges, and
    the column of 10^5 distinct tenants is not coded twice (as relabel would)."""
    return Coded(column.codes, ["" if v is None else v for v in column.values])


def _coded(column) -> Coded:
    """A string column as codes into its distinct values (first-seen order,
    like Coded.of; null is a value of its own, None)."""
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    return Coded(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False),
                 encoded.dictionary.to_pylist())


def _first_reasons(reasons) -> tuple[Coded, np.ndarray]:
    """Each event's first finish reason ("none" for an absent or empty list),
    and whether any of its reasons is content_filter."""
    n = len(reasons)
    lengths = pc.fill_null(pc.list_value_length(reasons), 0).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(reasons)
    has = lengths > 0
    refused = np.zeros(n, dtype=bool)
    if not has.any():
        return Coded(np.zeros(n, dtype=np.int64), ["none"]), refused
    starts = np.zeros(n, dtype=np.int64)
    starts[1:] = np.cumsum(lengths)[:-1]  # where each event's reasons start in ``flat``
    first = pc.if_else(pa.array(has), flat.take(pa.array(np.where(has, starts, 0))), "none")
    hit = pc.fill_null(pc.equal(flat, "content_filter"), False).to_numpy(zero_copy_only=False)
    refused[pc.list_parent_indices(reasons).to_numpy(zero_copy_only=False)[hit]] = True
    return _coded(first), refused
