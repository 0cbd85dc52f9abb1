"""Decoded request events as columns (pure).

Columns are read out of the decoded structs with C-level ``map``, and strings
become integer codes (one dict entry per distinct value), so what follows
(windows, groups, sketches, the Prometheus export) is numpy over the batch.
"""

from __future__ import annotations

import dataclasses
from operator import attrgetter
from typing import Sequence

import numpy as np


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


_FIELDS = ("timestamp", "model", "node", "gpu", "duration", "ttft", "tpot", "queue_time", "input_tokens",
           "output_tokens", "error_type", "operation", "finish_reasons", "trace_id", "refusal", "empty", "repetition",
           "format_ok", "cache_read_tokens", "tenant")


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
        trace_id=Strings(col["trace_id"]),
        refusal=floats("refusal"),
        empty=floats("empty"),
        repetition=floats("repetition"),
        format_ok=floats("format_ok"),
        cache_read_tokens=np.nan_to_num(floats("cache_read_tokens")),
        tenant=_absent_as_empty(Coded.of(col["tenant"])),
    )


def _absent_as_empty(column: Coded) -> Coded:
    """None (absent) as "": no valid value is empty, so nothing merges, and
    the column of 10^5 distinct tenants is not coded twice (as relabel would)."""
    return Coded(column.codes, ["" if v is None else v for v in column.values])


def from_arrow(events) -> RequestColumns:
    """Columns of request events read by schemas.columnar (an Arrow struct
    array with the wire names): numeric columns are Arrow's own buffers, and
    strings are dictionary-encoded in C++, so no Python runs per event."""
    n = len(events)
    if not n:
        return to_columns([])

    def column(name: str):
        return events.field(name)

    def floats(name: str) -> np.ndarray:  # null (absent) becomes NaN
        return column(name).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)

    def ints(name: str) -> np.ndarray:
        return column(name).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)

    error_type = _coded(column("error.type"))
    is_error = np.array([v is not None for v in error_type.values], dtype=bool)[error_type.codes]
    reasons = column("gen_ai.response.finish_reasons")
    first, refused = _first_reasons(reasons)
    output_tokens = ints("gen_ai.usage.output_tokens")
    outcome = np.where(is_error, 3, np.where(output_tokens == 0, 1, np.where(refused, 2, 0))).astype(np.int64)
    return RequestColumns(
        timestamp=floats("timestamp"),
        model=_coded(column("gen_ai.request.model")),
        node=_coded(column("host.name")),
        gpu=_coded(column("gpu.id")).relabel(lambda v: v or ""),
        duration=floats("gen_ai.server.request.duration"),
        ttft=floats("gen_ai.server.time_to_first_token"),
        tpot=floats("gen_ai.server.time_per_output_token"),
        queue_time=floats("fleetpulse.queue_time"),
        input_tokens=ints("gen_ai.usage.input_tokens"),
        output_tokens=output_tokens,
        error_type=error_type,
        is_error=is_error,
        operation=_coded(column("gen_ai.operation.name")).relabel(lambda v: v or "unknown"),
        finish_reason=first,
        outcome=Coded(outcome, OUTCOMES),
        trace_id=Strings(column("trace_id")),
        refusal=floats("fleetpulse.output.refusal"),
        empty=floats("fleetpulse.output.empty"),
        repetition=floats("fleetpulse.output.repetition"),
        format_ok=floats("fleetpulse.output.format_ok"),
        cache_read_tokens=np.nan_to_num(floats("gen_ai.usage.cache_read.input_tokens")),
        tenant=_absent_as_empty(_coded(column("fleetpulse.tenant"))),
    )


def _coded(column) -> Coded:
    """A string column as codes into its distinct values (first-seen order,
    like Coded.of; null is a value of its own, None)."""
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column, null_encoding="encode")
    return Coded(encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False),
                 encoded.dictionary.to_pylist())


def _first_reasons(reasons) -> tuple[Coded, np.ndarray]:
    """Each event's first finish reason ("none" for an absent or empty list),
    and whether any of its reasons is content_filter."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(reasons)
    lengths = pc.fill_null(pc.list_value_length(reasons), 0).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(reasons)
    owner = pc.list_parent_indices(reasons).to_numpy(zero_copy_only=False)
    has = lengths > 0
    starts = np.zeros(n, dtype=np.int64)
    starts[1:] = np.cumsum(lengths)[:-1]  # where each event's reasons start in ``flat``
    first = pa.array(np.full(n, "none", dtype=object)) if not has.any() else pc.if_else(
        pa.array(has), flat.take(pa.array(np.where(has, starts, 0))) if len(flat) else pa.nulls(n, pa.string()),
        "none")
    refused = np.zeros(n, dtype=bool)
    if len(flat):
        hit = pc.fill_null(pc.equal(flat, "content_filter"), False).to_numpy(zero_copy_only=False)
        refused[owner[hit]] = True
    return _coded(first), refused

