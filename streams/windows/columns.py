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
                out[f.name] = [v for v, k in zip(value, keep.tolist()) if k]
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
        trace_id=col["trace_id"],
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
